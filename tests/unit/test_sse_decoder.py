"""Conformance of ``SSEDecoder`` to WHATWG HTML §9.2.6 "Interpreting an event stream".

One test per rule, using the standard's own examples where it gives one, then the places where
httpx-sse 0.4.3's decoder departs from the rules, then property tests: any split of the byte
stream gives the same events, and the decoder agrees with a literal transcription of the
standard's algorithm.
"""

from __future__ import annotations

import itertools
import re

import pytest
from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder as HttpxSSELineDecoder
from hypothesis import given
from hypothesis import strategies as st

from asyncreply_client._errors import ProtocolError
from asyncreply_client._sse import ServerSentEvent, SSEDecoder

Event = tuple[str, str, str, "int | None"]


def as_tuple(event: ServerSentEvent) -> Event:
    return (event.event, event.data, event.id, event.retry)


def decode(*chunks: str | bytes, decoder: SSEDecoder | None = None) -> list[Event]:
    """Feed ``chunks`` to a decoder, end the stream, and return the events as tuples."""
    d = decoder if decoder is not None else SSEDecoder()
    events = [as_tuple(e) for chunk in chunks for e in d.feed(chunk)]
    d.close()
    return events


def data_of(*chunks: str | bytes) -> list[str]:
    return [data for _, data, _, _ in decode(*chunks)]


# --- the standard's examples (§9.2.6 and §9.2.2) ----------------------------------------------


def test_spec_example_messages_with_multi_line_data() -> None:
    stream = (
        "data: This is the first message.\n"
        "\n"
        "data: This is the second message, it\n"
        "data: has two lines.\n"
        "\n"
        "data: This is the third message.\n"
        "\n"
    )
    assert data_of(stream) == [
        "This is the first message.",
        "This is the second message, it\nhas two lines.",
        "This is the third message.",
    ]


def test_spec_example_event_types() -> None:
    stream = (
        "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
    )
    assert [(t, d) for t, d, _, _ in decode(stream)] == [
        ("add", "73857293"),
        ("remove", "2153"),
        ("add", "113411"),
    ]


def test_spec_example_data_lines_are_joined_with_lf() -> None:
    assert data_of("data: YHOO\ndata: +2\ndata: 10\n\n") == ["YHOO\n+2\n10"]


def test_spec_example_comments_ids_and_the_leading_space() -> None:
    stream = (
        ": test stream\n\n"
        "data: first event\nid: 1\n\n"
        "data:second event\nid\n\n"
        "data:  third event\n\n"
    )
    assert decode(stream) == [
        ("message", "first event", "1", None),
        ("message", "second event", "", None),
        ("message", " third event", "", None),
    ]


def test_spec_example_empty_data_fields() -> None:
    # "The first block would fire an event with the data set to the empty string, as would the
    # last block if it was followed by a blank line. The middle block would fire an event with
    # the data set to a single newline character. The last block would be discarded."
    assert data_of("data\n\ndata\ndata\n\ndata:") == ["", "\n"]
    assert data_of("data\n\ndata\ndata\n\ndata:\n\n") == ["", "\n", ""]


def test_spec_example_one_space_after_the_colon_is_optional() -> None:
    assert data_of("data:test\n\ndata: test\n\n") == ["test", "test"]


# --- lines and fields ---------------------------------------------------------------------------


def test_only_one_leading_space_is_stripped_and_no_other_whitespace() -> None:
    assert data_of("data:  two\n\ndata:\ttab\n\ndata: trailing \n\n") == [
        " two",
        "\ttab",
        "trailing ",
    ]


def test_value_runs_from_the_first_colon() -> None:
    assert data_of('data: {"a": "b:c"}\n\n') == ['{"a": "b:c"}']


def test_a_line_without_colon_is_a_field_with_an_empty_value() -> None:
    assert decode("event\ndata\n\n") == [("message", "", "", None)]


def test_comment_lines_are_ignored() -> None:
    assert decode(": keepalive\n:\ndata: x\n: between\n\n") == [("message", "x", "", None)]


def test_unknown_and_differently_cased_field_names_are_ignored() -> None:
    assert decode("Data: shout\nfoo: bar\ndata : spaced\ndata: kept\n\n") == [
        ("message", "kept", "", None)
    ]


@pytest.mark.parametrize(
    "stream",
    [
        "data: a\ndata: b\n\n",
        "data: a\rdata: b\r\r",
        "data: a\r\ndata: b\r\n\r\n",
        "data: a\rdata: b\n\r\n",
    ],
    ids=["lf", "cr", "crlf", "mixed"],
)
def test_cr_lf_and_crlf_all_end_a_line(stream: str) -> None:
    assert data_of(stream) == ["a\nb"]


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    assert data_of("data: a\r", "\ndata: b\r\n\r\n") == ["a\nb"]
    assert data_of("data: a\r", "", "\n", "\r\n") == ["a"]


def test_an_event_ended_by_cr_is_dispatched_without_waiting_for_the_next_chunk() -> None:
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed("data: now\r\r")] == ["now"]
    # ... and a following LF is the second half of that CR, not another blank line.
    assert decoder.feed("\ndata: next\n\n")[0].data == "next"


def test_two_crs_across_chunks_are_two_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("data: a\r") == []
    assert [e.data for e in decoder.feed("\r")] == ["a"]


# --- the byte order mark and UTF-8 --------------------------------------------------------------


def test_one_leading_bom_is_stripped() -> None:
    assert data_of("\ufeffdata: x\n\n") == ["x"]
    assert data_of(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_only_one_bom_is_stripped() -> None:
    # The second BOM becomes part of the field name, which is then unknown.
    assert data_of("\ufeff\ufeffdata: x\n\ndata: y\n\n") == ["y"]


def test_a_bom_is_stripped_only_at_the_start_of_the_stream() -> None:
    assert data_of("data: a\n\n", "\ufeffdata: b\n\n") == ["a"]


def test_a_bom_split_across_byte_chunks_is_stripped() -> None:
    assert data_of(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_a_character_split_across_byte_chunks_is_decoded() -> None:
    encoded = "data: héllo €\n\n".encode()
    assert data_of(*(encoded[i : i + 1] for i in range(len(encoded)))) == ["héllo €"]


def test_invalid_utf8_is_replaced_not_refused() -> None:
    assert data_of(b"data: a\xffb\n\n") == ["a\ufffdb"]


# --- id -----------------------------------------------------------------------------------------


def test_the_last_event_id_persists_across_events() -> None:
    assert [i for _, _, i, _ in decode("id: 7\ndata: a\n\ndata: b\n\n")] == ["7", "7"]


def test_an_empty_id_resets_the_last_event_id() -> None:
    decoder = SSEDecoder()
    events = decode("id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n")
    assert [i for _, _, i, _ in events] == ["1", "", "2", ""]
    decoder.feed("id: 3\ndata: e\n\nid:\n\n")
    assert decoder.last_event_id == ""


def test_an_id_containing_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    events = decode("id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", decoder=decoder)
    assert [i for _, _, i, _ in events] == ["1", "1"]
    assert decoder.last_event_id == "1"


def test_an_id_takes_effect_at_dispatch_even_without_data() -> None:
    # Step 1 of dispatch sets the last event ID before step 2 drops the empty event.
    decoder = SSEDecoder()
    assert decoder.feed("id: 3\n\n") == []
    assert decoder.last_event_id == "3"


def test_an_id_in_an_event_cut_short_is_not_taken() -> None:
    decoder = SSEDecoder()
    decoder.feed("id: 1\ndata: a\n\nid: 2\ndata: b\n")
    decoder.close()
    assert decoder.last_event_id == "1"


def test_a_seeded_last_event_id_is_kept_until_the_stream_sends_another() -> None:
    decoder = SSEDecoder(last_event_id="4")
    assert decode("retry: 100\n\ndata: x\n\nid: 5\ndata: y\n\n", decoder=decoder) == [
        ("message", "x", "4", None),
        ("message", "y", "5", None),
    ]


# --- retry --------------------------------------------------------------------------------------


def test_retry_sets_the_reconnection_time_even_without_an_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("retry: 1500\n\n") == []
    assert decoder.retry == 1500
    [event] = decoder.feed("retry: 0250\ndata: x\n\n")
    assert (event.retry, decoder.retry) == (250, 250)
    [event] = decoder.feed("data: y\n\n")
    assert (event.retry, decoder.retry) == (None, 250)


def test_retry_in_an_incomplete_event_still_applies() -> None:
    # The reconnection time is set when the field is processed, not at dispatch.
    decoder = SSEDecoder()
    decoder.feed("retry: 300\ndata: cut")
    decoder.close()
    assert decoder.retry == 300


@pytest.mark.parametrize(
    "value", ["-5", "+5", "  5", "5 ", "5.0", "1_000", "1e3", "", "\uff15", "\u0665", "0x10"]
)
def test_retry_that_is_not_only_ascii_digits_is_ignored(value: str) -> None:
    decoder = SSEDecoder()
    decoder.feed("retry: 40\n\n")
    [event] = decoder.feed(f"retry:{value}\ndata: x\n\n")
    assert (event.retry, decoder.retry) == (None, 40)


def test_an_absurdly_long_retry_saturates_instead_of_crashing() -> None:
    decoder = SSEDecoder()
    decoder.feed("retry: " + "9" * 5000 + "\n\n")
    assert decoder.retry is not None and decoder.retry >= 10**18


# --- dispatch -----------------------------------------------------------------------------------


def test_no_event_for_an_empty_data_buffer() -> None:
    assert decode("event: x\n\nid: 1\n\nretry: 5\n\n: c\n\n\n\n") == []


def test_the_event_type_defaults_to_message_and_resets_after_each_event() -> None:
    assert [t for t, _, _, _ in decode("data: a\n\nevent:\ndata: b\n\nevent: x\ndata: c\n\n")] == [
        "message",
        "message",
        "x",
    ]
    assert [t for t, _, _, _ in decode("event: x\n\ndata: y\n\n")] == ["message"]


def test_an_incomplete_event_at_the_end_of_the_stream_is_discarded() -> None:
    assert data_of("data: a\n\ndata: b\n") == ["a"]
    assert data_of("data: a\n\ndata: b") == ["a"]


def test_close_discards_pending_data_for_good() -> None:
    decoder = SSEDecoder()
    decoder.feed("data: stale\n")
    decoder.close()
    assert decode("\n", decoder=decoder) == []


def test_a_runaway_line_or_event_is_refused() -> None:
    with pytest.raises(ProtocolError, match="line longer than 10"):
        SSEDecoder(max_buffer=10).feed("data: " + "x" * 20)
    with pytest.raises(ProtocolError, match="event longer than 10"):
        SSEDecoder(max_buffer=10).feed("data: 12345\ndata: 12345\n")


# --- where httpx-sse 0.4.3 departs from the standard (why we decode ourselves) ----------------


def httpx_sse_decode(text: str) -> list[Event]:
    lines, decoder = HttpxSSELineDecoder(), HttpxSSEDecoder()
    out = []
    for line in [*lines.decode(text), *lines.flush()]:
        event = decoder.decode(line)
        if event is not None:
            out.append(as_tuple(event))
    return out


@pytest.mark.parametrize(
    ("stream", "standard", "httpx_sse_0_4_3"),
    [
        pytest.param(
            "\ufeffdata: x\n\n",
            [("message", "x", "", None)],
            [],
            id="bom-kept",
        ),
        pytest.param(
            "id: 1\n\n",
            [],
            [("message", "", "1", None)],
            id="phantom-event-after-id-issue-35",
        ),
        pytest.param(
            "retry: -5\ndata: x\n\n",
            [("message", "x", "", None)],
            [("message", "x", "", -5)],
            id="negative-retry-accepted",
        ),
    ],
)
def test_httpx_sse_0_4_3_departs_from_the_standard_here(
    stream: str, standard: list[Event], httpx_sse_0_4_3: list[Event]
) -> None:
    assert decode(stream) == standard
    assert httpx_sse_decode(stream) == httpx_sse_0_4_3


# --- properties ---------------------------------------------------------------------------------

_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def spec_decode(stream: str) -> tuple[list[Event], str, int | None]:
    """A literal, non-incremental transcription of §9.2.6, used as an oracle."""
    if stream.startswith("\ufeff"):
        stream = stream[1:]
    pieces = _LINE_ENDS.split(stream)
    lines = pieces[:-1]  # the last piece is not followed by a line end: discarded
    data, event_type, id_buffer, last_id, retry = "", "", "", "", None
    block_retry: int | None = None
    events: list[Event] = []
    for line in lines:
        if line == "":
            last_id = id_buffer
            if data == "":
                event_type, block_retry = "", None
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append((event_type or "message", data, last_id, block_retry))
            data, event_type, block_retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = block_retry = int(value)
    return events, last_id, retry


_values = st.text(
    alphabet=st.sampled_from(list("ab :\x00\t\u00e9\u20ac\U0001f600\ufeff0123-")), max_size=6
)
_lines = st.one_of(
    st.just(""),
    st.builds(
        lambda name, sep, value: name + sep + value,
        st.sampled_from(["data", "event", "id", "retry", ":", "", "Data", "other"]),
        st.sampled_from([":", ": ", ":  ", ""]),
        _values,
    ),
)


@st.composite
def _streams(draw: st.DrawFn) -> str:
    """A stream of random field, comment and blank lines with random line ends."""
    lines = draw(st.lists(_lines, max_size=25))
    ends = draw(
        st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=len(lines), max_size=len(lines))
    )
    body = "".join(line + end for line, end in zip(lines, ends, strict=True))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return bom + body + draw(st.sampled_from(["", "data: tail", "\r"]))


def run(chunks: list[bytes] | list[str]) -> tuple[list[Event], str, int | None]:
    decoder = SSEDecoder()
    events = decode(*chunks, decoder=decoder)
    return events, decoder.last_event_id, decoder.retry


def split(data: bytes | str, cuts: list[int]) -> list[bytes] | list[str]:
    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]  # type: ignore[misc]


@given(_streams())
def test_the_decoder_agrees_with_the_standard_transcribed_literally(stream: str) -> None:
    assert run([stream]) == spec_decode(stream)


@given(_streams(), st.data())
def test_any_split_of_the_bytes_gives_the_same_events(stream: str, data: st.DataObject) -> None:
    encoded = stream.encode()
    whole = run([encoded])
    # One byte, then one character, at a time: every boundary is a chunk boundary.
    assert run([encoded[i : i + 1] for i in range(len(encoded))]) == whole
    assert run(list(stream)) == whole
    cuts = st.lists(st.integers(min_value=0, max_value=len(encoded)), max_size=len(encoded))
    assert run(split(encoded, data.draw(cuts, label="byte cuts"))) == whole
    text_cuts = st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=len(stream))
    assert run(split(stream, data.draw(text_cuts, label="text cuts"))) == whole
