import pytest

from console.core.actions import ActionError, ActionRegistry, Target, parse_target


@pytest.mark.parametrize("text", ["sidecar:web", "run:01J9Z", "loop:a-b.c"])
def test_targets_parse(text):
    assert str(parse_target(text)) == text


@pytest.mark.parametrize("text", ["web", ":web", "sidecar:", "Sidecar:web", "sidecar:a b", "sidecar::x"])
def test_bad_targets_are_refused_with_the_expected_form(text):
    with pytest.raises(ActionError) as info:
        parse_target(text)
    assert info.value.code == "bad_target" and "KIND:NAME" in info.value.message


async def test_dispatch_reaches_the_registered_handler():
    registry = ActionRegistry()
    seen: list[Target] = []

    async def retry(target: Target) -> dict[str, object]:
        seen.append(target)
        return {"message": "relaunched"}

    registry.register("retry", "sidecar", retry)
    result = await registry.dispatch("retry", "sidecar:web", read_only=False)
    assert result == {"verb": "retry", "target": "sidecar:web", "message": "relaunched"}
    assert seen == [Target("sidecar", "web")]


@pytest.mark.parametrize(
    ("verb", "target", "read_only", "code"),
    [
        ("explode", "sidecar:web", False, "unknown_action"),
        (None, "sidecar:web", False, "unknown_action"),
        ("retry", 5, False, "bad_target"),
        ("retry", "nonsense", False, "bad_target"),
        ("retry", "sidecar:web", True, "read_only"),
        ("cancel", "sidecar:web", False, "not_applicable"),
        ("retry", "boom:x", False, "internal_error"),
    ],
)
async def test_refusals_are_structured(verb, target, read_only, code):
    registry = ActionRegistry()

    async def ok(_t: Target) -> dict[str, object]:
        return {}

    async def boom(_t: Target) -> dict[str, object]:
        raise RuntimeError("handler bug")

    registry.register("retry", "sidecar", ok)
    registry.register("retry", "boom", boom)
    with pytest.raises(ActionError) as info:
        await registry.dispatch(verb, target, read_only=read_only)
    assert info.value.code == code
    assert "\n" not in info.value.message
