"""What the browser walkthroughs share: a look at a page as a user sees it at a desk and on a phone.

``look(driver, shots, name)`` saves ``<name>-desktop.png`` (1400 px wide) and ``<name>-400px.png``, fails
when the page scrolls sideways at 400 px (wide tables must scroll in place), and runs axe-core (the
vendored ``vendor/axe.min.js``) on it: any serious or critical violation fails the test with axe's own
words. ``screenshot_dir(tmp_path)`` is ``$O2C_TEST_SCREENSHOTS/<test>`` when that is set (to keep them), else
the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
DESKTOP, PHONE = (1400, 1000), (400, 900)
BLOCKING = ("serious", "critical")


def screenshot_dir(tmp_path: Path, test_name: str) -> Path:
    keep = os.environ.get("O2C_TEST_SCREENSHOTS")
    folder = Path(keep) / test_name if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations))).catch(e => done(JSON.stringify({error: String(e)})));")
    found = json.loads(result)
    if isinstance(found, dict):
        raise AssertionError(f"axe-core did not run: {found['error']}")
    return [v for v in found if v.get("impact") in BLOCKING]


def _describe(violations: list[dict[str, Any]]) -> str:
    return "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at "
                     f"{', '.join(n['target'][0] for n in v['nodes'][:3] if n.get('target'))}" for v in violations)


def look(driver: Any, shots: Path, name: str) -> None:
    """Screenshots at both widths, no sideways scrolling at 400 px, and no serious axe-core violation."""
    driver.set_window_size(*DESKTOP)
    driver.save_screenshot(str(shots / f"{name}-desktop.png"))
    violations = axe_violations(driver)
    assert not violations, f"{name} ({driver.current_url}): {_describe(violations)}"
    driver.set_window_size(*PHONE)
    try:
        width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, f"{name} scrolls sideways at 400 px: {width[0]} px wide in {width[1]}"
        driver.save_screenshot(str(shots / f"{name}-400px.png"))
        narrow = axe_violations(driver)
        assert not narrow, f"{name} at 400 px ({driver.current_url}): {_describe(narrow)}"
    finally:
        driver.set_window_size(*DESKTOP)
