"""Make the README's screenshots of the web page: ``.venv/bin/python docs/screenshots.py``.

Starts the service with the real models on a loopback port (as the tests do), pushes the
repository's camera samples and two camera events of shared face photos, uploads a group photo,
and saves ``docs/web-upload.png`` and ``docs/web-events.png`` (1280 px wide) from headless
Chromium. Needs ../shared/data, chromium and chromium-driver.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.models_state import build_pipeline  # noqa: E402
from app.runtime import configure_threads  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.browser import start_chromium  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402
from tests.live import AUTH, TOKEN, make_settings, start_server  # noqa: E402
from tests.test_postman import push_camera_samples  # noqa: E402

WIDTH, MAX_HEIGHT = 1280, 2000


def push_photo(url: str, usn: str, photo: Path, when: str) -> None:
    info = f"usn={usn}&productid=FD-CAM&isotime={when}&channel=entrance"
    files = [("eventinfo", (None, info)), ("image_1", (photo.name, photo.read_bytes()))]
    resp = requests.post(f"{url}/push/{TOKEN}/eventinfo", files=files, timeout=60)
    resp.raise_for_status()


def wait(condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.2)
    return value


def save(session, path: Path) -> None:
    height = session.execute_script("return document.documentElement.scrollHeight")
    session.set_window_size(WIDTH, min(int(height) + 40, MAX_HEIGHT))
    session.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)
    session.save_screenshot(str(path))
    # A 256-colour palette (dithered) keeps the text crisp at a third of the size.
    image = Image.open(path).convert("RGB")
    image.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        path, optimize=True
    )
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    data = shared_data_dir()
    configure_threads(0)
    pipeline = build_pipeline(Settings())
    with tempfile.TemporaryDirectory() as tmp:
        live = start_server(make_settings(data_dir=str(Path(tmp) / "var")), pipeline)
        session = start_chromium(Path(tmp), (WIDTH, 900))
        try:
            push_camera_samples(live.url)
            faces = data / "faces"
            for usn, photo, when in (
                ("CAM-LOBBY-01", "deepface/img11.jpg", "2026-12-01T09:15:02Z"),
                ("CAM-STAIRS-02", "facenet_pytorch/multiface.jpg", "2026-12-01T09:16:40Z"),
            ):
                push_photo(live.url, usn, faces / photo, when)

            def processed() -> bool:
                page = requests.get(f"{live.url}/events?limit=500", headers=AUTH, timeout=10)
                return all(e["status"] != "pending" for e in page.json()["events"])

            wait(processed)
            session.get(f"{live.url}/")
            session.find_element("id", "token").send_keys(TOKEN)
            session.find_element("css selector", "#token-form button[type=submit]").click()
            field = session.find_element("id", "files")
            field.send_keys(str(faces / "deepface/selfie-many-people.jpg"))
            wait(lambda: session.find_elements("css selector", "svg.boxes g.box"))
            card = session.find_elements("css selector", ".face-card.rejected")[0]
            # the first rejected face highlighted, as when a person hovers or tabs to its card
            session.execute_script("arguments[0].focus({preventScroll: true})", card)
            save(session, ROOT / "docs" / "web-upload.png")

            session.set_window_size(WIDTH, 900)
            session.find_element("id", "tab-events").click()
            wait(lambda: session.find_elements("css selector", "#events-list .event"))
            wait(lambda: len(session.find_elements("css selector", "#events-list img.thumb")) >= 3)
            session.find_element("css selector", "#events-list .event .event-open").click()
            wait(lambda: session.find_elements("css selector", "#event-detail svg.boxes g.box"))
            time.sleep(1.0)
            save(session, ROOT / "docs" / "web-events.png")
        finally:
            session.quit()
            live.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
