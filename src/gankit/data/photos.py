"""``photos``: colour patches of real photographs, cut on the fly from pictures held in memory.

Every photograph is decoded once into a ``uint8`` (3, H, W) tensor, downscaled (never
enlarged) so that its longest side is at most ``data.max_side`` pixels. A sample is an
``image_size`` x ``image_size`` crop of one photograph, mirrored left-right for about half
of the samples (``data.flip``). Each photograph gives ``data.patches_per_photo`` crops at
positions drawn once from a generator seeded by the photograph's name, so the data set is a
fixed list of (photograph, top, left, mirrored) and the crops are cut only when a batch asks
for them (:class:`Patches`). A permutation of the sample indices
(:class:`~gankit.data.stream.BatchStream`) is therefore still the whole data order, and a
resumed run draws the very patches the uninterrupted one would. Sample ``i`` comes from
photograph ``i mod P`` (of P), so every prefix of the data set (the first 10,000 real
samples an evaluation compares against, say) spreads evenly over the photographs.

The test split is made of whole photographs: ``split: test`` gives patches only from
photographs that no training patch comes from.

The packaged photographs (the default)
--------------------------------------
Photographs, not drawings or renders, chosen by eye from four sources (:data:`CATALOGUE`):

* Debian's ``mate-backgrounds`` (46 MB download): the twelve nature photographs in
  ``/usr/share/backgrounds/mate/nature`` (its ``abstract`` and ``desktop`` folders hold
  paintings and logos);
* Debian's ``plasma-workspace-wallpapers`` (94 MB download): ten of its 30 wallpapers in
  ``/usr/share/wallpapers`` are photographs (the largest file of ``NAME/contents/images``
  is used); ``Grey``, a black-and-white photograph, is left out, the rest are renders
  and drawings;
* scikit-learn's two sample images (``china.jpg``, ``flower.jpg``) and five colour
  photographs that ship inside scikit-image (``astronaut``, ``chelsea``, ``coffee``,
  ``motorcycle_left`` (not its stereo twin ``motorcycle_right``), ``rocket``); their grey
  pictures and scientific images (micrographs, the Hubble deep field, a retina) are left
  out. Only their files are read: neither package is imported.

Debian's ``gnome-backgrounds`` (version 43 in Debian 12) holds only renders and patterns, so
it is not a source. Install everything with ``make setup``, or ``sudo apt-get install
mate-backgrounds plasma-workspace-wallpapers`` and ``pip install scikit-learn scikit-image``
(the ``photos`` extra). ``data.sources`` picks some of the four (the data set then holds
fewer photographs); a missing source is an error, never silently skipped, so that a data
set of a given configuration is the same wherever it loads.

Of the 29 photographs, six are held out for ``split: test`` (:data:`HELD_OUT`): Garden and
Storm (mate), EveningGlow and Path (plasma), flower.jpg (scikit-learn) and chelsea
(scikit-image); the other 23 are the training photographs.

A folder of your own
--------------------
``data.root=DIR`` uses every PNG/JPEG/BMP/WEBP under DIR instead (sorted by path, colour
or grey, grey ones as three equal channels); ``data.test_fraction`` (default 0.2) of them,
a fixed seeded choice of whole files (as the ``folder`` data set chooses), are the test
photographs.

Memory and time
---------------
The decoded photographs take at most 3 * max_side^2 bytes each: 12 MB for the 23 packaged
training photographs at the default ``max_side`` 512 (most are 16:10, 512x320), twice that
with ``flip`` (their mirror images are kept too), plus 25 bytes per sample for its position
(1.2 MB for the default 47,104 training samples); pre-cut, those patches would take 580 MB.
Cutting a batch of 64 patches of 64x64 takes about half a millisecond (one thread). Loading
decodes the JPEGs at a reduced scale (a JPEG can be decoded at 1/2, 1/4 or 1/8 of its size
directly) and takes about a second for the training photographs, 0.2 s for the test ones.
"""
from __future__ import annotations

import importlib.util
import math
import zlib
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from ..registry import closest
from .base import Dataset, LazyImages
from .images import IMAGE_EXTENSIONS, _image_files, _open, _oriented_size, _split_indices, _to_channels

__all__ = ["Patches", "photos", "CATALOGUE", "HELD_OUT", "APT_FOLDERS", "PIP_FOLDERS", "source_folder",
           "packaged_photos", "COLOURS", "colour_scores", "patch_means"]

Split = Literal["train", "test"]

#: source -> the photographs chosen from it: a file under the source's folder, or (plasma)
#: a wallpaper's name, whose largest picture in NAME/contents/images is used
CATALOGUE: Dict[str, Tuple[str, ...]] = {
    "mate-backgrounds": tuple(f"nature/{n}.jpg" for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")),
    "plasma-workspace-wallpapers": ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                                    "FallenLeaf", "Kite", "OneStandsOut", "Path", "summer_1am"),
    "scikit-learn": ("china.jpg", "flower.jpg"),
    "scikit-image": ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"),
}

#: the test photographs, SOURCE:PHOTO: about one in five, from every source
HELD_OUT = frozenset({
    "mate-backgrounds:nature/Garden.jpg", "mate-backgrounds:nature/Storm.jpg",
    "plasma-workspace-wallpapers:EveningGlow", "plasma-workspace-wallpapers:Path",
    "scikit-learn:flower.jpg", "scikit-image:chelsea.png",
})

#: the colour classes of ``data.labels=colour``: name -> anchor colour (R, G, B) in 0..255. A patch's
#: class is the anchor nearest (Euclidean, in RGB) to its mean colour. The anchors are the rounded
#: centres of eight k-means clusters of the mean colours of the packaged training photographs'
#: 32x32 patches, each class holding 8 to 17 % of them; being fixed, they label any split and
#: any folder alike.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "dark": (40, 44, 31), "brown": (100, 87, 66), "red": (167, 60, 17), "orange": (208, 139, 45),
    "green": (102, 168, 42), "blue": (52, 85, 132), "grey": (138, 144, 157), "light": (200, 202, 195),
}

#: the Debian packages' folders
APT_FOLDERS = {"mate-backgrounds": "/usr/share/backgrounds/mate",
               "plasma-workspace-wallpapers": "/usr/share/wallpapers"}
#: the Python packages' folders: source -> (module, folder inside it)
PIP_FOLDERS = {"scikit-learn": ("sklearn", "datasets/images"), "scikit-image": ("skimage", "data")}


def source_folder(source: str) -> Optional[Path]:
    """The folder holding a source's photographs, or None when it is not installed (a Python
    package is found without importing it)."""
    if source in APT_FOLDERS:
        folder = Path(APT_FOLDERS[source])
        return folder if folder.is_dir() else None
    module, sub = PIP_FOLDERS[source]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / sub
    return folder if folder.is_dir() else None


def _how_to_install(sources: Sequence[str]) -> str:
    apt = [s for s in sources if s in APT_FOLDERS]
    pip = [s for s in sources if s in PIP_FOLDERS]
    how = []
    if apt:
        how.append("sudo apt-get install " + " ".join(apt))
    if pip:
        how.append("pip install " + " ".join(pip) + " (the 'photos' extra: pip install -e '.[photos]')")
    return " and ".join(how)


def _largest_picture(folder: Path) -> Optional[Path]:
    """The picture with the most pixels in ``folder`` (links to one file count once)."""
    if not folder.is_dir():
        return None
    best, best_key = None, None
    seen = set()
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            with Image.open(real) as img:
                w, h = img.size
        except Exception:
            continue
        key = (w * h, real.name)
        if best_key is None or key > best_key:
            best, best_key = real, key
    return best


def _find(source: str, folder: Path, photo: str) -> Optional[Path]:
    if source == "plasma-workspace-wallpapers":
        return _largest_picture(folder / photo / "contents" / "images")
    path = folder / photo
    return path if path.is_file() else None


def packaged_photos(sources: Optional[Sequence[str]] = None) -> List[Tuple[str, Path, bool]]:
    """(SOURCE:PHOTO, file, held out) for every chosen photograph of ``sources`` (default: all),
    in catalogue order; a :class:`DataError` saying what to install when any is missing."""
    sources = list(CATALOGUE) if sources is None else list(sources)
    missing_sources, missing_files, out = [], [], []
    for source in sources:
        folder = source_folder(source)
        if folder is None:
            missing_sources.append(source)
            continue
        for photo in CATALOGUE[source]:
            path = _find(source, folder, photo)
            name = f"{source}:{photo}"
            if path is None:
                missing_files.append(f"{name} (looked in {folder})")
            else:
                out.append((name, path, name in HELD_OUT))
    if missing_sources:
        what = ", ".join(f"{s} ({'Debian package' if s in APT_FOLDERS else 'Python package'})"
                         for s in missing_sources)
        if len(missing_sources) == len(sources):
            lead = "no photographs found for the photos data set: none of its sources is installed"
        else:
            lead = "the photos data set is missing some of its photographs"
        others = [s for s in sources if s not in missing_sources]
        leave = (f"; or use only what is installed with --set data.sources=[{','.join(others)}] (fewer photographs)"
                 if others else "")
        raise DataError(f"{lead}: missing {what}. Install them: {_how_to_install(missing_sources)} (make setup "
                        f"installs all of them){leave}; or use a folder of your own photographs with "
                        f"--set data.root=DIR")
    if missing_files:
        raise DataError("the photos data set cannot find " + "; ".join(missing_files) + ". The installed "
                        "package holds other pictures than the ones chosen from it (another version?); "
                        "leave the source out with --set data.sources=[...] or use --set data.root=DIR")
    return out


def _decode(path: Path, max_side: int) -> torch.Tensor:
    """One picture as uint8 (3, H, W), EXIF orientation applied, longest side at most ``max_side``."""
    with _open(path) as img:
        try:
            w, h = _oriented_size(img)
            scale = max_side / max(w, h)
            target = (w, h) if scale >= 1 else (max(1, round(w * scale)), max(1, round(h * scale)))
            if scale < 1 and img.format == "JPEG":   # decode at 1/2, 1/4 or 1/8 scale, still >= target
                img.draft(None, (math.ceil(img.size[0] * scale), math.ceil(img.size[1] * scale)))
            img.load()
            img = _to_channels(ImageOps.exif_transpose(img), 3)
            if img.size != target:
                img = img.resize(target, Image.Resampling.LANCZOS)
            a = np.array(img, dtype=np.uint8).reshape(img.size[1], img.size[0], 3)
        except Exception as exc:
            raise DataError(f"cannot read image {path}: {exc}. Remove or replace the file.") from exc
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


class Patches(LazyImages):
    """A lazy ``uint8`` (N, 3, S, S) image field (:class:`~gankit.data.base.LazyImages`):
    square crops of photographs held in memory, cut when indexed; ``patches[:]`` is the
    whole field as a tensor.

    ``photo``, ``top``, ``left`` and ``flipped`` (N,) say where each sample comes from:
    ``photos[photo[i]][:, top[i]:top[i] + S, left[i]:left[i] + S]``, mirrored left-right
    where ``flipped[i]``; ``names[p]`` names photograph p.
    """

    def __init__(self, photos: Sequence[torch.Tensor], names: Sequence[str], photo: torch.Tensor,
                 top: torch.Tensor, left: torch.Tensor, flipped: torch.Tensor, size: int):
        if not (len(photo) == len(top) == len(left) == len(flipped)):
            raise ValueError("photo, top, left and flipped must have one entry per sample")
        if len(photos) != len(names):
            raise ValueError(f"{len(photos)} photographs but {len(names)} names")
        self.photos, self.names = list(photos), list(names)
        self.photo, self.top, self.left = photo.long(), top.long(), left.long()
        self.flipped = flipped.bool()
        self.size_ = int(size)
        for p, pic in enumerate(self.photos):
            if pic.dtype != torch.uint8 or pic.dim() != 3 or pic.shape[0] != 3:
                raise ValueError(f"photograph {self.names[p]} must be uint8 (3, H, W), got {pic.dtype} "
                                 f"{tuple(pic.shape)}")
        if len(self.photo):
            h = torch.tensor([pic.shape[1] for pic in self.photos])[self.photo]
            w = torch.tensor([pic.shape[2] for pic in self.photos])[self.photo]
            if (self.top < 0).any() or (self.left < 0).any() or (self.top + size > h).any() \
                    or (self.left + size > w).any():
                raise ValueError("a crop lies outside its photograph")
        # the mirror images, where crops are mirrored: cutting from them is twice as fast as flipping
        self._mirrors = [pic.flip(-1).contiguous() if self.flipped.any() else pic for pic in self.photos]

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.photo), 3, self.size_, self.size_))

    def __repr__(self) -> str:
        return (f"Patches({len(self)} crops of {self.size_}x{self.size_} from {len(self.photos)} photographs)")

    # -- the cutting ----------------------------------------------------------------------
    def _take(self, idx: torch.Tensor) -> torch.Tensor:
        s = self.size_
        if not len(idx):
            return torch.empty((0, 3, s, s), dtype=torch.uint8)
        crops = []
        for p, t, left, mirrored in zip(self.photo[idx].tolist(), self.top[idx].tolist(), self.left[idx].tolist(),
                                        self.flipped[idx].tolist()):
            if mirrored:   # the mirrored crop at `left` is the crop of the mirror image at W - s - left
                pic = self._mirrors[p]
                left = pic.shape[2] - s - left
            else:
                pic = self.photos[p]
            crops.append(pic[:, t:t + s, left:left + s])
        return torch.stack(crops)

    def locate(self, i: int) -> Tuple[str, int, int, bool]:
        """(photograph, top, left, mirrored) of sample ``i``."""
        return (self.names[int(self.photo[i])], int(self.top[i]), int(self.left[i]), bool(self.flipped[i]))


def colour_scores(images: torch.Tensor) -> torch.Tensor:
    """Scores (N, K) of the colour classes (:data:`COLOURS`) for images (N, 3, H, W), uint8 or
    floats in [0, 1]: minus the squared distance (in 0..255 units) from each image's mean colour
    to each anchor; the argmax is the class ``data.labels=colour`` gives."""
    x = torch.as_tensor(images)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ConfigError(f"colour classes are defined for colour images (N, 3, H, W), got {tuple(x.shape)}")
    mean = x.double().mean((2, 3)) * (1.0 if x.dtype == torch.uint8 else 255.0)
    return _anchor_scores(mean)


def _anchor_scores(mean: torch.Tensor) -> torch.Tensor:
    anchors = torch.tensor(list(COLOURS.values()), dtype=torch.float64)
    return -((mean.unsqueeze(1) - anchors.unsqueeze(0)) ** 2).sum(2)


def patch_means(x: "Patches") -> torch.Tensor:
    """The mean colour (N, 3) in 0..255 (float64) of every patch, from each photograph's
    summed-area table (a mirrored crop has its original's mean), without cutting any patch."""
    s = x.size_
    out = torch.empty(len(x.photo), 3, dtype=torch.float64)
    for p, pic in enumerate(x.photos):
        rows = (x.photo == p).nonzero().squeeze(1)
        if not len(rows):
            continue
        table = torch.nn.functional.pad(pic.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
        t, left = x.top[rows], x.left[rows]
        box = table[:, t + s, left + s] - table[:, t, left + s] - table[:, t + s, left] + table[:, t, left]
        out[rows] = (box / (s * s)).t()
    return out


def _cut_positions(names: Sequence[str], pictures: Sequence[torch.Tensor], size: int, per_photo: int,
                   flip: bool) -> Tuple[torch.Tensor, ...]:
    """(photo, top, left, flipped) of every sample, sample i from photograph i mod P; each
    photograph's positions are drawn from a generator seeded by its name alone."""
    tops, lefts, flips = [], [], []
    for name, pic in zip(names, pictures):
        g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
        h, w = pic.shape[1:]
        tops.append(torch.randint(0, h - size + 1, (per_photo,), generator=g))
        lefts.append(torch.randint(0, w - size + 1, (per_photo,), generator=g))
        mirrored = torch.rand(per_photo, generator=g) < 0.5
        flips.append(mirrored if flip else torch.zeros(per_photo, dtype=torch.bool))
    n_photos = len(names)

    def interleave(parts):   # (P, K) -> sample k * P + p
        return torch.stack(parts).t().reshape(-1)

    photo = torch.arange(n_photos).repeat(per_photo)
    return photo, interleave(tops), interleave(lefts), interleave(flips)


@DATASETS.register("photos")
def photos(split: Split = "train", image_size: int = 64, patches_per_photo: int = 2048, max_side: int = 512,
           flip: bool = True, sources: Optional[List[str]] = None, root: Optional[str] = None,
           test_fraction: Optional[float] = None, labels: Literal["none", "colour"] = "none") -> Dataset:
    """Colour patches of real photographs, cut on the fly; the test split is whole held-out photographs.
    ``labels: colour`` labels each patch by the class of its mean colour (:data:`COLOURS`: dark,
    brown, red, orange, green, blue, grey, light), a condition for the conditional methods
    (``--method stackgan --data photos --set data.labels=colour``); conditional_accuracy then
    judges generated patches by the same rule.

    The photographs are Debian's wallpapers and scikit-learn's and scikit-image's sample
    photographs, or every picture under ``data.root`` (see the module's description)."""
    if image_size < 1:
        raise ConfigError(f"data.image_size must be a positive number of pixels, got {image_size}")
    if patches_per_photo < 1:
        raise ConfigError(f"data.patches_per_photo must be at least 1, got {patches_per_photo}")
    if max_side < image_size:
        raise ConfigError(f"data.max_side={max_side} is smaller than data.image_size={image_size}: a photograph "
                          f"downscaled to {max_side} pixels cannot hold a {image_size}x{image_size} patch")
    if root is not None:
        if sources is not None:
            raise ConfigError("data.sources picks among the packaged photographs; with data.root (your own folder) "
                              "unset it")
        names, files = _user_photos(root, split, 0.2 if test_fraction is None else test_fraction)
    else:
        if test_fraction is not None:
            raise ConfigError("data.test_fraction applies to a folder of your own (data.root); the packaged "
                              "photographs have a fixed set of test photographs: unset it")
        chosen = _check_sources(sources)
        found = [(name, path) for name, path, held in packaged_photos(chosen) if held == (split == "test")]
        if not found:
            raise DataError(f"the sources {', '.join(chosen)} hold no {split} photographs; add a source with "
                            f"data.sources")
        names, files = [n for n, _ in found], [p for _, p in found]

    pictures = [_decode(path, max_side) for path in files]
    small = [(n, tuple(p.shape[1:])) for n, p in zip(names, pictures) if min(p.shape[1:]) < image_size]
    if small:
        name, (h, w) = small[0]
        leave = "remove them from the folder" if root is not None else "leave their source out (data.sources)"
        raise DataError(f"{len(small)} photograph(s) have a side shorter than data.image_size={image_size} at "
                        f"data.max_side={max_side} (e.g. {name} is {w}x{h}; photographs are downscaled to max_side, "
                        f"never enlarged): lower data.image_size, raise data.max_side or {leave}")
    photo, top, left, flipped = _cut_positions(names, pictures, image_size, patches_per_photo, flip)
    x = Patches(pictures, names, photo, top, left, flipped, image_size)
    if labels == "colour":
        y = _anchor_scores(patch_means(x)).argmax(1)
        return Dataset(x=x, kind="image", name="photos", y=y, classes=list(COLOURS), label_scores=colour_scores)
    if labels != "none":
        raise ConfigError(f"data.labels must be none or colour, got {labels!r}")
    return Dataset(x=x, kind="image", name="photos")


def _check_sources(sources: Optional[List[str]]) -> List[str]:
    if sources is None:
        return list(CATALOGUE)
    if not sources:
        raise ConfigError("data.sources is empty: name at least one of " + ", ".join(CATALOGUE) +
                          " (or unset it for all)")
    for s in sources:
        if s not in CATALOGUE:
            raise ConfigError(f"data.sources: unknown source '{s}'{closest(str(s), CATALOGUE)}; choose among "
                              + ", ".join(CATALOGUE))
    if len(set(sources)) != len(sources):
        raise ConfigError(f"data.sources names a source twice: {sources}")
    return [s for s in CATALOGUE if s in sources]   # catalogue order: the data set does not depend on the list's


def _user_photos(root: str, split: str, test_fraction: float) -> Tuple[List[str], List[Path]]:
    base = Path(root).expanduser()
    if not base.exists():
        raise DataError(f"data.root={root}: no such folder")
    if not base.is_dir():
        raise DataError(f"data.root={root} is a file, not a folder of photographs")
    files = _image_files(base, recursive=True)
    if not files:
        raise DataError(f"no photographs under data.root={root}: looked for " + ", ".join(IMAGE_EXTENSIONS)
                        + " (any case)")
    keep = _split_indices(len(files), split, test_fraction, f"data.root={root}")
    return [files[i].relative_to(base).as_posix() for i in keep], [files[i] for i in keep]
