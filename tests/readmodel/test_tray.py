from hypothesis import given
from hypothesis import strategies as st

from console.readmodel.tray import Level, Reason, config_reasons, engine_reasons, rank_key, roll_up

levels = st.sampled_from(list(Level))
reasons = st.builds(Reason, level=levels, code=st.sampled_from(["a", "engine_not_running", "nothing_configured"]),
                    text=st.text(max_size=5), action=st.text(max_size=5), subject=st.text(max_size=3))


def test_empty_host_is_ok():
    assert roll_up([]).state is Level.OK


@given(st.lists(reasons, max_size=12))
def test_state_is_the_worst_level_and_reasons_are_ranked_worst_first(rs):
    tray = roll_up(rs)
    assert tray.state.rank == max((r.level.rank for r in rs), default=0)
    assert [rank_key(r) for r in tray.reasons] == sorted(rank_key(r) for r in rs)
    assert sorted(map(repr, tray.reasons)) == sorted(map(repr, rs))


def test_notes_at_level_ok_never_raise_the_state():
    tray = roll_up(config_reasons(configured_count=0, config_path="/c.toml", config_present=False))
    assert tray.state is Level.OK
    assert tray.reasons[0].code == "nothing_configured"
    assert "embedded default" in tray.reasons[0].text


def test_engine_not_running_is_down_and_outranks_other_down_reasons():
    other = Reason(Level.DOWN, "aaa_first_alphabetically", "t", "a", subject="sidecar:a")
    down = engine_reasons(running=False, state_dir="/s", last_owner_pid=None, last_stop_clean=None)
    tray = roll_up([other, *down])
    assert tray.state is Level.DOWN
    assert tray.top is not None and tray.top.code == "engine_not_running"


def test_engine_reason_says_how_the_last_engine_ended():
    crashed = engine_reasons(running=False, state_dir="/s", last_owner_pid=42, last_stop_clean=False)[0]
    assert "pid 42 ended without stopping" in crashed.text
    clean = engine_reasons(running=False, state_dir="/s", last_owner_pid=42, last_stop_clean=True)[0]
    assert "stopped cleanly" in clean.text
    assert engine_reasons(running=True, state_dir="/s", last_owner_pid=1, last_stop_clean=True) == []


def test_every_non_ok_reason_carries_code_text_and_action():
    for r in engine_reasons(running=False, state_dir="/s", last_owner_pid=None, last_stop_clean=None):
        assert r.code and r.text and r.action and "\n" not in r.text


def test_monitoring_exit_codes():
    assert [lvl.exit_code for lvl in Level] == [0, 1, 1, 2]
    assert Level.DEGRADED.monitoring_word == "WARNING"


def test_remote_config_reasons():
    from console.readmodel.snapshot import PluginView, RemoteConfigView
    from console.readmodel.tray import plugin_reasons, remote_config_reasons
    from console.remote.records import ApplyRecord, PollRecord, Rollback

    assert remote_config_reasons(None) == []
    quiet = RemoteConfigView(state="active", running_etag='"a"', last_poll=PollRecord(0, "not_modified", 304))
    assert remote_config_reasons(quiet) == []
    legacy = RemoteConfigView(last_poll=PollRecord(0, "no_remote_config", 404))
    assert remote_config_reasons(legacy) == []
    rolled = RemoteConfigView(state="rolled_back", running_etag='"a"',
                              last_rollback=Rollback('"b"', "probation_expired", 0, "no poll", "rolled_back", '"a"'))
    [reason] = remote_config_reasons(rolled)
    assert (reason.level, reason.code) == (Level.DEGRADED, "remote_config_rolled_back")
    assert '"b" rolled back (probation_expired)' in reason.text and 'keeps running "a"' in reason.action
    rejected = RemoteConfigView(state="rejected", running_etag='"a"',
                                last_apply=ApplyRecord('"c"', "document_too_large", 0, "2 MiB"),
                                last_poll=PollRecord(0, "document_too_large", 200, "2 MiB"))
    assert [r.code for r in remote_config_reasons(rejected)] == ["remote_config_rejected"]  # said once
    failing = RemoteConfigView(state="active", last_poll=PollRecord(0, "timed_out", None, "no answer"))
    assert [r.code for r in remote_config_reasons(failing)] == ["remote_config_poll_failed"]
    probation = RemoteConfigView(state="probation", probation_etag='"d"', probation_deadline=100.0)
    [note] = remote_config_reasons(probation)
    assert note.level is Level.OK and roll_up([note]).state is Level.OK
    [broken] = plugin_reasons([PluginView("tool", "1.0", "failed", "hash mismatch"),
                               PluginView("ok", "1.0", "installed")])
    assert (broken.code, broken.subject) == ("plugin_failed", "plugin:tool")
