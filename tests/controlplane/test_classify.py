import pytest

from console.controlplane.classify import Outcome, Provenance, Why, classify

ALIVE = Provenance(managed=True, runner_alive=True, key_available=True)


@pytest.mark.parametrize(
    ("status", "failure", "provenance", "outcome", "why"),
    [
        (200, None, None, Outcome.LIVE, None),
        (204, None, ALIVE, Outcome.LIVE, None),
        (500, None, ALIVE, Outcome.TRANSIENT, Why.SERVER_ERROR),
        (503, None, None, Outcome.TRANSIENT, Why.SERVER_ERROR),
        (429, None, None, Outcome.TRANSIENT, Why.SERVER_ERROR),
        (None, "network", ALIVE, Outcome.TRANSIENT, Why.NETWORK_ERROR),
        (None, "timeout", ALIVE, Outcome.TRANSIENT, Why.TIMED_OUT),
        (401, None, ALIVE, Outcome.POP_FALLBACK, Why.UNAUTHORIZED),
        (401, None, None, Outcome.TERMINAL, Why.UNAUTHORIZED),  # no provenance context: stays terminal
        (401, None, Provenance(False, True, True), Outcome.TERMINAL, Why.UNAUTHORIZED),  # a user's token
        (401, None, Provenance(True, False, True), Outcome.TERMINAL, Why.UNAUTHORIZED),  # runner dead: no revival
        (401, None, Provenance(True, True, False), Outcome.TERMINAL, Why.UNAUTHORIZED),  # no key to prove with
        (404, None, ALIVE, Outcome.TERMINAL, Why.NOT_FOUND),
        (410, None, ALIVE, Outcome.TERMINAL, Why.GONE),
        (400, None, ALIVE, Outcome.TRANSIENT, Why.SERVER_ERROR),  # not understood: never finalize on it
    ],
)
def test_heartbeat_classification(status, failure, provenance, outcome, why):
    verdict = classify(status, failure, provenance)
    assert (verdict.outcome, verdict.why) == (outcome, why)
