"""The proxy runs on uvloop in production: the key scenarios again, on uvloop."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tests.integration import test_proxy_events as events
from tests.integration import test_proxy_failures as failures
from tests.integration import test_proxy_framing as framing
from tests.integration import test_proxy_limits as limits
from tests.integration import test_proxy_transparency as transparency
from tests.integration import test_proxy_websocket as websocket

Scenario = Callable[..., Coroutine[Any, Any, None]]

SCENARIOS: list[tuple[Scenario, dict[str, Any]]] = [
    (transparency.test_methods_statuses_and_framings_match_direct, {"mode": "length"}),
    (transparency.test_methods_statuses_and_framings_match_direct, {"mode": "chunked"}),
    (transparency.test_methods_statuses_and_framings_match_direct, {"mode": "close"}),
    (transparency.test_request_bodies_arrive_intact, {"body": b"x" * 300_000}),
    (transparency.test_streamed_responses_arrive_as_sent, {"kind": "sse"}),
    (transparency.test_http10_client_gets_close_delimited_body, {}),
    (transparency.test_head_then_get_on_the_same_connection, {}),
    (transparency.test_expect_100_continue, {}),
    (transparency.test_pipelined_requests_are_answered_in_order, {}),
    (failures.test_upstream_down_is_a_502_with_upstream_connect, {}),
    (failures.test_slow_upstream_is_a_504_with_upstream_timeout, {}),
    (failures.test_reset_mid_body_truncates_and_records_upstream_reset, {}),
    (failures.test_idle_closing_upstream_never_surfaces_an_error, {}),
    (failures.test_stale_pooled_connection_is_retried_once_on_a_fresh_one, {"body": b"{}"}),
    (failures.test_client_disconnect_is_recorded_and_frees_the_upstream, {}),
    (events.test_n_requests_make_n_events_with_the_right_fields, {}),
    (framing.test_connection_cannot_strip_content_length_from_a_request, {}),
    (framing.test_connection_cannot_strip_content_length_from_a_response, {}),
    (framing.test_codings_and_lengths_are_forwarded_in_one_spelling, {}),
    (framing.test_a_refused_pipelined_request_is_answered_after_the_ones_before, {}),
    (limits.test_a_head_sent_a_byte_at_a_time_hits_a_total_deadline, {}),
    (limits.test_a_client_that_never_reads_is_cut_off, {}),
    (limits.test_an_endless_upstream_head_is_a_502_in_bounded_memory, {}),
    (limits.test_a_trickling_upstream_head_still_times_out, {}),
    (websocket.test_websocket_messages_flow_both_ways_and_the_handshake_is_recorded, {}),
    (websocket.test_many_websockets_at_once_do_not_mix_up, {}),
    (websocket.test_stopping_the_proxy_closes_open_tunnels, {}),
    (websocket.test_a_raw_upgraded_protocol_relays_bytes_and_half_close, {}),
    (websocket.test_a_slow_reader_holds_the_upstream_back_instead_of_filling_memory, {}),
]


@pytest.mark.parametrize(
    ("scenario", "kwargs"),
    SCENARIOS,
    ids=[f"{s.__name__.removeprefix('test_')}-{'-'.join(map(str, k))}" for s, k in SCENARIOS],
)
def test_on_uvloop(scenario: Scenario, kwargs: dict[str, Any]) -> None:
    uvloop.run(scenario(**kwargs))
