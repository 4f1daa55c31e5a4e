from console.core.testing_knobs import retention_period


def test_the_retention_period_moves_only_under_the_testing_flag():
    assert retention_period(60.0, {"LOOPCTL_RETENTION_PERIOD": "1"}) == 60.0
    assert retention_period(60.0, {"LOOPCTL_TESTING": "1", "LOOPCTL_RETENTION_PERIOD": "1.5"}) == 1.5
    assert retention_period(60.0, {"LOOPCTL_TESTING": "1"}) == 60.0


def test_a_retention_period_out_of_bounds_or_garbled_is_the_default():
    for value in ("0", "0.01", "nan", "inf", "-3", "120", "soon"):
        assert retention_period(60.0, {"LOOPCTL_TESTING": "1", "LOOPCTL_RETENTION_PERIOD": value}) == 60.0
