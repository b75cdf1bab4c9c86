"""Image data sets held in memory: Fashion-MNIST, MNIST, a folder of pictures, a NumPy array.

Every loader returns a :class:`~gankit.data.base.Dataset` whose images are ``uint8``
(N, C, H, W); ``array`` may also return float32 (N, D) vectors.

* ``fashion_mnist`` and ``mnist`` read the four IDX files (gzipped or not) with
  :func:`read_idx`. The folder is found in this order: ``data.root``; ``$GANKIT_DATA``
  (the files directly in it or in a subfolder such as ``fashion-mnist``); the Debian
  package's folder (``apt-get install dataset-fashion-mnist``); a download by torchvision
  into ``~/.cache/gankit/NAME``. A ``data.root`` that lacks the files is an error, never
  a reason to look elsewhere.
* ``folder`` loads every PNG/JPEG/BMP/WEBP under a folder with Pillow; images in
  subfolders are labelled by subfolder. Files and folders whose names start with a dot
  (such as macOS ``._x.png`` resource forks) are skipped.
* ``array`` loads an ``.npy`` or ``.npz`` file.

``folder`` and ``array`` have no test split of their own: ``test_fraction`` holds out a
fixed, seeded part of the files for ``split: test``.
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset

__all__ = ["read_idx", "download_torchvision", "fashion_mnist", "mnist", "folder", "array",
           "FASHION_MNIST_DEBIAN_DIR", "MNIST_DEBIAN_DIR", "CACHE_DIR", "IMAGE_EXTENSIONS"]

Split = Literal["train", "test"]

#: where the Debian package dataset-fashion-mnist puts the files
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
#: Debian has no MNIST package; a folder there is used if someone provides one
MNIST_DEBIAN_DIR = "/usr/share/datasets/mnist"
#: torchvision downloads go to CACHE_DIR/<name>
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "gankit")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# ---------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path, remedy: str) -> Tuple[bytes, bool]:
    """The file's content, decompressed if it is gzipped, and whether a gzip stream ended early."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] != b"\x1f\x8b":
        return raw, False
    parts: List[bytes] = []
    rest = raw
    try:
        while rest:                              # a gzip file may hold several members
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            parts.append(inflater.decompress(rest))
            if not inflater.eof:
                return b"".join(parts), True
            rest = inflater.unused_data
    except zlib.error as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc}); {remedy}") from exc
    return b"".join(parts), False


def read_idx(path, remedy: str = "the file is damaged or incomplete: download it again or re-install it") -> np.ndarray:
    """Read an IDX file (gzipped or not) into a native-endian NumPy array of its shape.

    The header is two zero bytes, a type byte (0x08 is uint8) and the number of
    dimensions, followed by one big-endian uint32 per dimension. Raises
    :class:`DataError` for a bad magic number or a payload whose length is not the
    product of the dimensions (a truncated or padded file); ``remedy`` says what to do.
    """
    path = Path(path)
    data, cut = _read_bytes(path, remedy)
    stream = " (its gzip stream ends early)" if cut else ""
    if len(data) < 4:
        raise DataError(f"{path} is truncated{stream}: {len(data)} bytes, too short even for the "
                        f"4-byte IDX header; {remedy}")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path} is not an IDX file: magic number 0x{data[:4].hex()} (expected 0x000008dd "
                        f"for unsigned bytes with dd dimensions); {remedy}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated{stream}: the header of {ndim} dimensions needs {header} bytes, "
                        f"the file has {len(data)}; {remedy}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else f"{actual - expected} bytes too long"
        raise DataError(f"{path} is {what}{stream}: shape {dims} needs {expected} bytes of data after the "
                        f"header, found {actual}; {remedy}")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))   # a writable, native-endian copy


class _IdxSet:
    def __init__(self, name: str, title: str, subdirs: Sequence[str], tv_class: str, apt: Optional[str],
                 classes: Sequence[str]):
        self.name, self.title, self.subdirs, self.tv_class = name, title, tuple(subdirs), tv_class
        self.apt, self.classes = apt, list(classes)

    @property
    def remedy(self) -> str:
        fix = "the file is damaged or incomplete: download it again"
        if self.apt:
            fix += f" (files from the Debian package: sudo apt-get install --reinstall {self.apt})"
        return fix


_IDX_SETS: Dict[str, _IdxSet] = {
    "fashion_mnist": _IdxSet("fashion_mnist", "Fashion-MNIST", ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
                             "FashionMNIST", "dataset-fashion-mnist",
                             ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                              "Bag", "Ankle boot")),
    "mnist": _IdxSet("mnist", "MNIST", ("mnist", "MNIST/raw"), "MNIST", None, [str(i) for i in range(10)]),
}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _idx_file(folder: Path, stem: str) -> Optional[Path]:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (plain first)."""
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _holding(base: Path, subdirs: Sequence[str], stems: Sequence[str]) -> Optional[Path]:
    """The first of base/<subdir>..., base that holds every file in ``stems``."""
    for folder in [base / s for s in subdirs] + [base]:
        if all(_idx_file(folder, s) for s in stems):
            return folder
    return None


def download_torchvision(name: str, dest: Path) -> Path:
    """Download data set ``name`` with torchvision into ``dest``; returns the folder of IDX files.

    Needs the network; the caller treats any exception as "not available".
    """
    from torchvision import datasets

    cls = getattr(datasets, _IDX_SETS[name].tv_class)
    cls(root=str(dest), train=True, download=True)
    return Path(dest) / cls.__name__ / "raw"


def _resolve_root(info: _IdxSet, root: Optional[str], split: str, debian_dir) -> Path:
    """The folder holding the ``split`` files of ``info``: data.root > $GANKIT_DATA > Debian > download."""
    stems = _IDX_FILES[split]
    subdirs = ", ".join(info.subdirs)
    if root:
        base = Path(root).expanduser()
        found = _holding(base, info.subdirs, stems)
        if found is not None:
            return found
        if not base.is_dir():
            raise DataError(f"data.root={root}: no such folder. Point data.root at the folder holding the "
                            f"{info.title} files ({', '.join(_all_files())}, gzipped or not).")
        missing = [s + "[.gz]" for s in stems if _idx_file(base, s) is None]
        raise DataError(f"data.root={root} does not hold the {info.title} {split} files: missing "
                        f"{', '.join(missing)} (also looked in its subfolders {subdirs}). Put the files there "
                        f"or fix data.root.")
    tried = []
    env = os.environ.get("GANKIT_DATA")
    if env:
        found = _holding(Path(env).expanduser(), info.subdirs, stems)
        if found is not None:
            return found
        tried.append(f"$GANKIT_DATA={env} (not there, nor in its subfolders {subdirs})")
    else:
        tried.append("$GANKIT_DATA (not set)")
    if debian_dir:
        found = _holding(Path(debian_dir), (), stems)
        if found is not None:
            return found
        tried.append(f"{debian_dir} (not there)")
    cache = Path(CACHE_DIR) / info.name
    found = _holding(cache, info.subdirs, stems)
    if found is not None:
        return found
    try:
        found = _holding(Path(download_torchvision(info.name, cache)), (), stems)
        if found is not None:
            return found
        tried.append(f"a download into {cache} (finished, but the files are not there)")
    except Exception as exc:  # offline, no torchvision, a mirror down: all mean "not available"
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        tried.append(f"a download into {cache} (failed: {type(exc).__name__}: {reason})")
    how = [f"sudo apt-get install {info.apt}"] if info.apt else []
    how.append(f"put the four files {', '.join(_all_files())} (gzipped or not) into a folder DIR and pass "
               f"--set data.root=DIR, or set GANKIT_DATA=DIR")
    raise DataError(f"{info.title} is not available; looked in " + "; ".join(tried) + ". To fix it, "
                    + " or ".join(how) + ".")


def _all_files() -> List[str]:
    return [s + ".gz" for split in ("train", "test") for s in _IDX_FILES[split]]


def _resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of uint8 (N, C, H, W) images to size x size, in chunks."""
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8)
    for start in range(0, x.shape[0], 4096):
        chunk = F.interpolate(x[start:start + 4096].float(), size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)
        out[start:start + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _check_image_size(image_size: Optional[int]) -> None:
    if image_size is not None and image_size < 1:
        raise ConfigError(f"data.image_size must be a positive number of pixels, got {image_size}")


def _load_idx_set(name: str, root: Optional[str], split: str, image_size: int, channels: int,
                  debian_dir) -> Dataset:
    info = _IDX_SETS[name]
    _check_image_size(image_size)
    folder_ = _resolve_root(info, root, split, debian_dir)
    image_path, label_path = (_idx_file(folder_, s) for s in _IDX_FILES[split])
    images = read_idx(image_path, info.remedy)
    labels = read_idx(label_path, info.remedy)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{image_path} should hold uint8 images (N, H, W), but holds {images.dtype} "
                        f"{images.shape}; {info.remedy}")
    if labels.ndim != 1:
        raise DataError(f"{label_path} should hold labels (N,), but holds shape {labels.shape}; {info.remedy}")
    if len(images) != len(labels):
        raise DataError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels; "
                        f"the two files do not belong together: {info.remedy}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(info.classes)):
        raise DataError(f"{label_path} holds labels outside 0..{len(info.classes) - 1}; {info.remedy}")
    x = torch.from_numpy(images).unsqueeze(1)
    if image_size != x.shape[-1] or image_size != x.shape[-2]:
        x = _resize_images(x, image_size)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset(x=x, kind="image", name=name, y=y, classes=list(info.classes))


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: Optional[str] = None, split: Split = "train", image_size: int = 28,
                  channels: Literal[1, 3] = 1) -> Dataset:
    """Fashion-MNIST: 70,000 28x28 grey pictures of clothing in 10 classes (Xiao et al. 2017)."""
    return _load_idx_set("fashion_mnist", root, split, image_size, channels, FASHION_MNIST_DEBIAN_DIR)


@DATASETS.register("mnist")
def mnist(root: Optional[str] = None, split: Split = "train", image_size: int = 28,
          channels: Literal[1, 3] = 1) -> Dataset:
    """MNIST: 70,000 28x28 grey handwritten digits (LeCun et al. 1998)."""
    return _load_idx_set("mnist", root, split, image_size, channels, MNIST_DEBIAN_DIR)


# ---------------------------------------------------------------------------------------------
# the held-out split of folder and array data
# ---------------------------------------------------------------------------------------------

def _split_indices(n: int, split: str, test_fraction: float, source: str) -> np.ndarray:
    """Sorted indices of ``split`` among ``n`` samples; "test" is a seeded (seed 0) ``test_fraction``."""
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"data.test_fraction must be in [0, 1), got {test_fraction}")
    if test_fraction == 0.0:
        if split == "test":
            raise DataError(f"{source} has no test split: set data.test_fraction to hold out part of it for "
                            f"testing, e.g. --set data.test_fraction=0.1 (use the same value for training)")
        return np.arange(n)
    n_test = max(1, int(round(n * test_fraction)))
    if n_test >= n:
        raise DataError(f"{source} holds {n} samples, too few to hold out data.test_fraction={test_fraction} "
                        f"and keep any for training")
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


# ---------------------------------------------------------------------------------------------
# a folder of pictures
# ---------------------------------------------------------------------------------------------

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_WIDE_GREY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _image_files(base: Path, recursive: bool) -> List[Path]:
    found = base.rglob("*") if recursive else base.iterdir()
    files = []
    for path in found:
        rel = path.relative_to(base).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(base).as_posix())


def _open(path: Path):
    try:
        return Image.open(path)
    except Exception as exc:
        raise DataError(f"cannot read image {path}: {exc}. Remove or replace the file.") from exc


def _is_grey(img) -> bool:
    if img.mode in _GREY_MODES:
        return True
    if img.mode in ("P", "PA"):
        palette = img.getpalette("RGB") or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3))
    return False


def _oriented_size(img) -> Tuple[int, int]:
    """(width, height) once the EXIF orientation is applied."""
    w, h = img.size
    return (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def _to_channels(img, channels: int):
    """``img`` as mode L (1 channel) or RGB (3): 16-bit scaled, alpha composited over white."""
    if img.mode in _WIDE_GREY_MODES:
        a = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or (a.size and a.max() > 255):
            a = a / 257.0
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    elif img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")


def _fit(img, size: int, crop: str):
    w, h = img.size
    if crop == "none":
        box = (0, 0, w, h)
    else:
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
    if (w, h) == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.LANCZOS, box=box)


def _survey(files: List[Path], channels: Optional[int], same_size: bool) -> int:
    """Read only the headers: the number of channels (unless given) and, if asked, that all sizes agree."""
    grey = colour = None
    sizes: Dict[Tuple[int, int], Path] = {}
    for path in files:
        with _open(path) as img:
            try:
                is_grey = _is_grey(img) if channels is None else None
                size = _oriented_size(img) if same_size else None
            except Exception as exc:
                raise DataError(f"cannot read image {path}: {exc}. Remove or replace the file.") from exc
        if is_grey is not None:
            grey, colour = (grey or path, colour) if is_grey else (grey, colour or path)
        if size is not None:
            sizes.setdefault(size, path)
            if len(sizes) > 1:
                (s1, f1), (s2, f2) = sizes.items()
                raise DataError(f"images differ in size: {f1} is {s1[0]}x{s1[1]}, {f2} is {s2[0]}x{s2[1]}; "
                                f"set a size to resize them all to, e.g. --set data.image_size=64")
    if channels is not None:
        return channels
    if grey and colour:
        raise DataError(f"the folder mixes grey and colour images (e.g. {grey} is grey, {colour} is colour); "
                        f"choose one, e.g. --set data.channels=3 (or data.channels=1)")
    return 1 if grey else 3


@DATASETS.register("folder")
def folder(root: str = "", image_size: Optional[int] = 64, channels: Optional[Literal[1, 3]] = None,
           crop: Literal["center", "none"] = "center", recursive: bool = True, split: Split = "train",
           test_fraction: float = 0.0) -> Dataset:
    """Every PNG/JPEG/BMP/WEBP picture under a folder; subfolders become class labels."""
    if not root:
        raise DataError("data.root is not set: point it at a folder of pictures, e.g. --set data.root=DIR")
    _check_image_size(image_size)
    base = Path(root).expanduser()
    if not base.exists():
        raise DataError(f"data.root={root}: no such folder")
    if not base.is_dir():
        raise DataError(f"data.root={root} is a file, not a folder of pictures")
    files = _image_files(base, recursive)
    if not files:
        where = "under" if recursive else "directly in (data.recursive=false)"
        raise DataError(f"no image files {where} {root}: looked for " + ", ".join(IMAGE_EXTENSIONS)
                        + " (any case)")

    if channels is None or image_size is None:   # a first pass over the headers only
        channels = _survey(files, channels, image_size is None)

    rel_dirs = [p.relative_to(base).parts[:-1] for p in files]
    labelled = all(rel_dirs)
    keep = _split_indices(len(files), split, test_fraction, f"data.root={root}")
    out = None
    for i, idx in enumerate(keep):
        path = files[idx]
        with _open(path) as img:
            try:
                img.load()
                img = ImageOps.exif_transpose(img)
                img = _to_channels(img, channels)
            except Exception as exc:
                raise DataError(f"cannot read image {path}: {exc}. Remove or replace the file.") from exc
        if image_size is not None:
            img = _fit(img, image_size, crop)
        a = np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], channels)
        if out is None:
            out = np.empty((len(keep),) + a.shape, dtype=np.uint8)
        elif a.shape != out.shape[1:]:    # only if a header (read by _survey) misstated the size
            raise DataError(f"images differ in size: {files[keep[0]]} is {out.shape[2]}x{out.shape[1]}, {path} is "
                            f"{a.shape[1]}x{a.shape[0]}; set a size, e.g. --set data.image_size=64")
        out[i] = a
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    y = classes = None
    if labelled:
        classes = sorted({d[0] for d in rel_dirs})
        index = {c: k for k, c in enumerate(classes)}
        y = torch.tensor([index[rel_dirs[i][0]] for i in keep], dtype=torch.int64)
    return Dataset(x=x, kind="image", name="folder", y=y, classes=classes)


# ---------------------------------------------------------------------------------------------
# a NumPy array
# ---------------------------------------------------------------------------------------------

_ARRAY_KEYS = ("x", "images", "data", "arr_0")
_LABEL_KEYS = ("y", "labels")
_ACCEPTED_SHAPES = ("(N, D) vectors, (N, H, W) grey images, (N, C, H, W) or (N, H, W, C) images "
                    "with C = 1 or 3")


def _images_to_uint8(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    observed = None
    if a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        observed = f"integer values from {lo} to {hi}"
    elif a.dtype.kind == "f":
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(a.astype(np.float32) * 255.0).astype(np.uint8)
        if lo >= -1.0 and hi <= 1.0:
            return np.rint((a.astype(np.float32) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        observed = f"float values from {lo:g} to {hi:g}"
    if observed is None:
        raise DataError(f"{path}: images of dtype {a.dtype} are not supported; store uint8, or floats in [0, 1] "
                        f"or [-1, 1]")
    raise DataError(f"{path}: the images hold {observed}; accepted are uint8 (0..255), other integers in 0..255, "
                    f"or floats in [0, 1] or in [-1, 1]. Rescale the array.")


def _array_labels(npz, n: int, labels_key: Optional[str], path: Path, names: List[str]) -> Optional[np.ndarray]:
    keys = [labels_key] if labels_key else [k for k in _LABEL_KEYS if k in names]
    if labels_key and labels_key not in names:
        raise DataError(f"{path} has no array '{labels_key}'; it holds: {', '.join(names)}. "
                        f"Set --set data.labels_key=NAME to one of them.")
    for key in keys:
        y = _member(npz, key, path)
        ok = y.ndim == 1 and len(y) == n and y.dtype.kind in "iu" and (n == 0 or y.min() >= 0)
        if ok:
            return y.astype(np.int64)
        if labels_key:
            raise DataError(f"{path}: labels '{key}' must be non-negative integers of shape ({n},), "
                            f"got {y.dtype} {y.shape}")
    return None


def _member(npz, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except Exception as exc:
        raise DataError(f"cannot read array '{key}' from {path}: {exc}. The file is damaged; write it again.") \
            from exc


@DATASETS.register("array")
def array(path: str = "", key: Optional[str] = None, labels_key: Optional[str] = None, split: Split = "train",
          test_fraction: float = 0.0, fields: List[str] = ()) -> Dataset:
    """Images or vectors from a .npy or .npz file (uint8 images, or floats in [0, 1] or [-1, 1]);
    labels from ``y``/``labels`` (or ``labels_key``); ``fields`` names further arrays of the
    .npz to carry as fields of the same name (integers (N,): labels, uint8 (N, C, H, W):
    images, floats (N, D): vectors, integers (N, L): tokens)."""
    if not path:
        raise DataError("data.path is not set: point it at a .npy or .npz file, e.g. --set data.path=FILE.npz")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data.path={path}: no such file" if not file.exists() else f"data.path={path} is not a file")
    try:
        loaded = np.load(file, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"cannot read {file} as a .npy or .npz file: {exc}. Write it with numpy.save or "
                        f"numpy.savez.") from exc
    y = None
    extra = {}
    if isinstance(loaded, np.ndarray):
        if fields:
            raise DataError(f"{file} is a .npy file holding one array: data.fields applies to .npz files only; "
                            f"unset it")
        if key or labels_key:
            raise DataError(f"{file} is a .npy file holding one array: data.key and data.labels_key apply to "
                            f".npz files only; unset them")
        a = loaded
    else:
        with loaded as npz:
            names = list(npz.files)
            chosen = key if key else next((k for k in _ARRAY_KEYS if k in names), None)
            if chosen is None or chosen not in names:
                lead = f"has no array '{key}'" if key else "has none of the arrays " + ", ".join(_ARRAY_KEYS)
                raise DataError(f"{file} {lead}; it holds: {', '.join(names) or 'nothing'}. "
                                f"Choose one with --set data.key=NAME.")
            a = _member(npz, chosen, file)
            y = _array_labels(npz, len(a) if a.ndim else -1, labels_key, file, names)
            extra = _extra_fields(npz, fields, a, file, names, {chosen, labels_key or "y"})
    if a.ndim not in (2, 3, 4):
        raise DataError(f"{file}: array of shape {a.shape} cannot be used; accepted are {_ACCEPTED_SHAPES}")
    if len(a) == 0:
        raise DataError(f"{file}: the array of shape {a.shape} holds no samples")
    if a.dtype.kind in "fc":
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise DataError(f"{file}: {bad} values are NaN or infinite; clean the array")
    if a.dtype.kind not in "biuf":
        raise DataError(f"{file}: arrays of dtype {a.dtype} are not supported; store numbers (uint8 or float)")

    keep = _split_indices(len(a), split, test_fraction, f"data.path={path}")
    a = a[keep] if len(keep) != len(a) else a
    y = torch.from_numpy(y[keep]) if y is not None else None
    extra = {k: torch.from_numpy(np.ascontiguousarray(v[keep])) for k, v in extra.items()}
    if a.ndim == 2:
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return Dataset(x=x, kind="vector", name="array", y=y, extra=extra)
    if a.ndim == 3:
        a = a[:, None]
    elif a.shape[1] not in (1, 3):
        if a.shape[3] not in (1, 3):
            raise DataError(f"{file}: array of shape {a.shape} has no channel axis of 1 or 3; accepted are "
                            f"{_ACCEPTED_SHAPES}")
        a = a.transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(_images_to_uint8(a, file)))
    return Dataset(x=x, kind="image", name="array", y=y, extra=extra)


def _extra_fields(npz, fields, a: np.ndarray, path: Path, names: List[str], taken) -> Dict[str, np.ndarray]:
    out = {}
    for name in fields:
        if name not in names:
            raise DataError(f"{path} has no array '{name}' (data.fields); it holds: {', '.join(names)}")
        if name in taken or name in ("x", "y"):
            raise DataError(f"data.fields: '{name}' is already the data set's x or labels; name another array")
        v = _member(npz, name, path)
        if v.ndim == 0 or len(v) != len(a):
            raise DataError(f"{path}: array '{name}' has shape {v.shape}, but the data has {len(a)} samples; "
                            "a field needs one entry per sample")
        ok = ((v.dtype.kind in "iu" and v.ndim in (1, 2)) or (v.dtype == np.uint8 and v.ndim == 4)
              or (v.dtype.kind == "f" and v.ndim == 2 and np.isfinite(v).all()))
        if not ok:
            raise DataError(f"{path}: array '{name}' ({v.dtype} {v.shape}) is not a field gankit reads: integers "
                            "(N,) for labels or (N, L) for tokens, uint8 (N, C, H, W) for images, finite floats "
                            "(N, D) for vectors")
        if v.dtype.kind == "f":
            v = v.astype(np.float32)
        elif v.ndim < 4:
            v = v.astype(np.int64)            # labels and tokens
        out[name] = v
    return out
