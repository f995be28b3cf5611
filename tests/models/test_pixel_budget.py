"""PixelBudget: images run side by side only while their pixels fit, first come first served."""

from __future__ import annotations

import threading
import time

from models.pipeline import PixelBudget


def test_small_images_share_and_large_ones_run_alone() -> None:
    budget = PixelBudget(100)
    with budget.hold(40), budget.hold(60):
        assert budget.used == 100
    assert budget.used == 0
    with budget.hold(10_000):  # larger than the limit: counts as the limit
        assert budget.used == 100
    assert budget.used == 0


def test_waits_for_room_and_keeps_arrival_order() -> None:
    budget = PixelBudget(100)
    order: list[str] = []
    first = budget.hold(70)
    first.__enter__()

    def run(name: str, pixels: int, delay: float) -> None:
        time.sleep(delay)
        with budget.hold(pixels):
            order.append(name)
            time.sleep(0.05)

    big = threading.Thread(target=run, args=("big", 100, 0.0))
    small = threading.Thread(target=run, args=("small", 10, 0.05))  # would fit, but is behind
    big.start()
    small.start()
    time.sleep(0.2)
    assert order == []  # the big image waits for room; the small one waits behind it
    first.__exit__(None, None, None)
    big.join(5)
    small.join(5)
    assert order == ["big", "small"]
    assert budget.used == 0
