"""Tests of the reference server over real loopback HTTP."""
