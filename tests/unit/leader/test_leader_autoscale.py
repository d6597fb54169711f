"""The autoscale recommender (pure): target tracking, tolerance, windows, bounds, missing data."""

from p2porch.leader.autoscale import AutoscalePolicy, ServiceUsage, recommend

POLICY = AutoscalePolicy(1, 10, cpu_percent=50.0, scale_up_delay_s=30.0, scale_down_delay_s=120.0)


def usage(cpu: float | None, running: int = 2, reporting: int | None = None, mem: float | None = None):
    return ServiceUsage(running, running if reporting is None else reporting, 30.0, cpu, mem)


def rec(current, u, history=(), now=1000.0, last=0.0, since=0.0, policy=POLICY, rolling=False):
    return recommend(
        policy, current, u, history, now, last_scale_at=last, observing_since=since, rolling=rolling
    )


def test_scale_up_is_ceil_of_current_times_usage_over_target_with_its_inputs():
    d = rec(2, usage(95.0), history=[(975.0, 4)])
    assert (d.desired, d.raw) == (4, 4)
    assert d.reason == "cpu 95 % of limit over 30 s, target 50 %"
    assert d.inputs["cpu_percent"] == 95.0 and d.inputs["desired"] == 4


def test_within_tolerance_holds():
    d = rec(4, usage(54.0, running=4))
    assert not d.changes and d.raw == 4 and d.reason.startswith("steady")


def test_never_on_missing_data():
    assert not rec(2, None).changes
    d = rec(2, usage(99.0, reporting=1))
    assert not d.changes and "1 of 2 tasks" in d.reason
    assert not rec(2, usage(None)).changes


def test_paused_during_a_rolling_update():
    d = rec(2, usage(99.0), rolling=True)
    assert not d.changes and "rolling" in d.reason


def test_bounds_and_out_of_bounds_correction():
    assert rec(2, usage(500.0), history=[(975.0, 10)]).desired == 6  # +max(current, 4) per step
    assert rec(9, usage(100.0, running=9), history=[(975.0, 10)]).desired == 10  # max
    assert rec(12, None).desired == 10  # above max after a policy change: corrected at once
    low = AutoscalePolicy(3, 5, cpu_percent=50.0)
    assert rec(1, None, policy=low).desired == 3


def test_scale_up_needs_the_whole_up_window():
    # a spike now, but 20 s ago the load only asked for 2: the minimum over the window holds it
    d = rec(2, usage(95.0), history=[(980.0, 2)])
    assert not d.changes and "whole 30 s" in d.reason
    assert rec(2, usage(95.0), history=[(965.0, 2), (980.0, 4)]).desired == 4


def test_scale_down_takes_the_largest_recommendation_of_the_window_and_halves_at_most():
    hist = [(870.0, 8), (950.0, 5)]  # 870 is outside the 120 s window
    d = rec(8, usage(5.0, running=8), history=hist)
    assert d.desired == 5 and d.raw == 1
    assert rec(8, usage(5.0, running=8), history=[(950.0, 1)]).desired == 4  # halves at most


def test_no_scale_sooner_than_the_delay_after_the_last_scale():
    d = rec(4, usage(5.0, running=4), history=[(950.0, 1)], last=950.0)
    assert not d.changes and "last scale was 50 s ago" in d.reason


def test_a_new_leader_observes_a_whole_window_before_acting():
    d = rec(4, usage(5.0, running=4), since=990.0)
    assert not d.changes and "leader change" in d.reason
    assert rec(2, usage(95.0), since=990.0).desired == 2  # up window 30 s, observed 10 s


def test_memory_metric_and_largest_metric_wins():
    policy = AutoscalePolicy(1, 10, cpu_percent=50.0, memory_percent=50.0)
    d = rec(2, usage(20.0, mem=150.0), policy=policy)
    assert d.desired == 6 and d.reason.startswith("memory 150 %")


def test_history_is_pruned_to_the_longer_window():
    d = rec(2, usage(50.0), history=[(100.0, 9), (990.0, 2)])
    assert d.history == ((990.0, 2), (1000.0, 2))
