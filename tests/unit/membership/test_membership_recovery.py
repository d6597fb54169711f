"""The recover guard and the follow-a-newer-generation decision (pure)."""

from p2porch.membership.recovery import may_follow, recover_refusal

VOTERS = ("10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947")
ME = VOTERS[0]


def test_minority_side_with_no_answers_may_recover():
    assert recover_refusal(ME, VOTERS, 0, {VOTERS[1]: None, VOTERS[2]: None}) is None


def test_a_voter_that_sees_a_leader_of_our_generation_blocks_recovery():
    # the partition: this node sees no leader, but a voter it can still reach does
    answers = {VOTERS[1]: {"generation": 0, "leader": VOTERS[2]}, VOTERS[2]: None}
    reason = recover_refusal(ME, VOTERS, 0, answers)
    assert reason is not None and "sees leader" in reason


def test_a_reachable_majority_blocks_recovery_even_without_a_leader():
    answers = {VOTERS[1]: {"generation": 0, "leader": None}, VOTERS[2]: None}
    reason = recover_refusal(ME, VOTERS, 0, answers)
    assert reason is not None and "2 of 3 voters" in reason


def test_a_newer_generation_blocks_recovery_and_an_old_leader_does_not():
    assert "generation 2" in (recover_refusal(ME, VOTERS, 1, {VOTERS[1]: {"generation": 2}}) or "")
    five = (*VOTERS, "10.0.0.4:7947", "10.0.0.5:7947")
    stale = {five[1]: {"generation": 0, "leader": five[3]}}  # a leader of a generation we replaced
    assert recover_refusal(ME, five, 1, stale) is None


def test_majority_with_quorum_does_not_follow_a_generation_founded_behind_it():
    conflict = may_follow(True, 0, own_version=120, newer_generation=1, founded_at_version=100)
    assert conflict is not None and "120" in conflict.to_dict()["message"]


def test_following_is_allowed_without_quorum_or_when_nothing_would_be_lost():
    assert may_follow(False, 0, 120, 1, 100) is None  # the minority side follows
    assert may_follow(True, 0, 100, 1, 100) is None  # founder had everything we committed
    assert may_follow(True, 2, 500, 2, 0) is None  # not newer
