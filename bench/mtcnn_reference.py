"""Record what mtcnn 0.1.1, the reference MTCNN, finds in the shared face images.

mtcnn 0.1.1 is the release the original service ran; ``models.detector`` reimplements its
candidate handling over the weights of the ``mtcnn`` package the service depends on (1.0.0).
Both releases install as ``mtcnn``, so 0.1.1 runs in a side environment of its own: this
script makes it (``bench/out/mtcnn-0.1.1``, a venv with ``mtcnn==0.1.1`` and the service's
``tensorflow-cpu``), runs itself there with ``--record``, and writes the detections to
``tests/models/fixtures/mtcnn_0_1_1.json``, which ``tests/models/test_detector.py`` compares
the service's detector against. Images are decoded with OpenCV (BGR -> RGB), as the tests do.

Usage: ``.venv/bin/python bench/mtcnn_reference.py [--data DIR] [--out FILE]``
(``--data`` defaults to ``$FACEQ_TEST_DATA`` or ``../shared/data``). Run it again only when
the shared images change; it takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDE_ENV = ROOT / "bench" / "out" / "mtcnn-0.1.1"
FIXTURE = ROOT / "tests" / "models" / "fixtures" / "mtcnn_0_1_1.json"
# The service's TensorFlow; 0.1.1 runs unchanged on it (Keras 3).
REQUIREMENTS = ("mtcnn==0.1.1", "tensorflow-cpu==2.21.0", "opencv-python-headless")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Besides the default 20 px, a few sizes on every image, so other pyramids are compared too.
MIN_FACE_SIZES = (20, 40, 80)


def _default_data() -> Path:
    return Path(os.environ.get("FACEQ_TEST_DATA", ROOT.parent / "shared" / "data"))


def images_of(data: Path) -> list[Path]:
    """Every face image of the shared data, sorted (the fixture's keys are relative paths)."""
    faces = data / "faces"
    return sorted(p for p in faces.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _side_python() -> Path:
    python = SIDE_ENV / "bin" / "python"
    if not python.exists():
        venv.create(SIDE_ENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True, cwd=ROOT
        )
    return python


def record(data: Path, out: Path) -> None:
    """Run mtcnn 0.1.1 on every image at every ``MIN_FACE_SIZES`` and write the fixture."""
    import importlib.metadata

    import cv2
    from mtcnn import MTCNN

    images: dict[str, dict[str, list[dict]]] = {}
    detectors = {size: MTCNN(min_face_size=size) for size in MIN_FACE_SIZES}
    for path in images_of(data):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        name = path.relative_to(data / "faces").as_posix()
        images[name] = {}
        for size, detector in detectors.items():
            faces = detector.detect_faces(rgb)
            images[name][str(size)] = [
                {
                    "box": [int(v) for v in f["box"]],
                    "confidence": round(float(f["confidence"]), 7),
                    "keypoints": {k: [int(v) for v in p] for k, p in f["keypoints"].items()},
                }
                for f in faces
            ]
        print(name, [len(images[name][str(s)]) for s in MIN_FACE_SIZES], flush=True)
    doc = {
        "mtcnn": importlib.metadata.version("mtcnn"),  # its __version__ says 0.1.0
        "decoded_with": "cv2.imread BGR -> RGB",
        "min_face_sizes": list(MIN_FACE_SIZES),
        "images": images,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=_default_data(), help="shared data folder")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="fixture to write")
    parser.add_argument("--record", action="store_true", help="(inside the side environment)")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    if not (data / "faces").is_dir():
        print(f"no faces folder under {data} (set FACEQ_TEST_DATA or --data)", file=sys.stderr)
        return 2
    if args.record:
        record(data, args.out.resolve())
        return 0
    python = _side_python()
    command = [str(python), __file__, "--record", "--data", str(data), "--out", str(args.out)]
    return subprocess.run(command, check=False, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
