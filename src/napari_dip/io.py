"""Reading and writing image files: TIFF/OME-TIFF (tifffile), PNG and JPEG (Pillow), and
OME-Zarr (zarr, read lazily).

Nothing here imports torch. Errors are :class:`ImageFileError` with a one-line message meant
for the user, never a library's internal exception.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "READABLE_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "ImageDataError",
    "ImageFileError",
    "check_writable",
    "is_zarr",
    "read_axes",
    "read_image",
    "read_ome_zarr",
    "read_scale",
    "write_image",
]

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
WRITABLE_SUFFIXES = TIFF_SUFFIXES + PNG_SUFFIXES + JPEG_SUFFIXES
READABLE_SUFFIXES = WRITABLE_SUFFIXES
# Classic TIFF and BigTIFF, little- and big-endian.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ImageFileError(Exception):
    """A file cannot be read or written as an image; the message is shown to the user as is."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a TIFF, PNG, JPEG (or any other Pillow format) file into a numpy array.

    The reader is picked from the file's first bytes, not its name, so a misnamed TIFF still
    reads. Raises :class:`ImageFileError` when the file is missing or not an image.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "grey.png", np.full((16, 16), 7, np.uint8))
    >>> image = read_image(folder / "grey.png")
    >>> image.shape, image.dtype, int(image[0, 0])
    ((16, 16), dtype('uint8'), 7)
    >>> read_image(folder / "missing.tif")
    Traceback (most recent call last):
    ...
    napari_dip.io.ImageFileError: .../missing.tif: no such file
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImageFileError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise ImageFileError(f"{path}: cannot open ({err.strerror or err})") from None
    if not head:
        raise ImageFileError(f"{path}: the file is empty")
    try:
        if head in _TIFF_MAGIC:
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            image = iio.imread(path, plugin="pillow")
    except Exception as err:  # every reader has its own exception types; all mean "not readable"
        kind = "a TIFF" if head in _TIFF_MAGIC else "an image"
        detail = str(err).splitlines()[0] if head in _TIFF_MAGIC and str(err) else ""
        raise ImageFileError(
            f"{path}: cannot read it as {kind} file" + (f" ({detail})" if detail else "")
        ) from None
    image = np.asarray(image)
    if image.size == 0:  # tifffile reads a TIFF cut short after its header as no pixels
        raise ImageFileError(f"{path}: holds no image data (shape {image.shape}); is it cut short?")
    return image


def read_axes(path: str | os.PathLike[str]) -> str | None:
    """The axes of a TIFF's image data as ``T``/``Z``/``C``/``Y``/``X`` letters, from its
    ImageJ, OME or tifffile metadata (``S``, RGB samples, becomes ``C``); ``None`` for other
    files and when the file does not say (tifffile's ``Q``/``I`` = unknown).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "stack.tif", np.zeros((3, 16, 16), np.uint16), axes="ZYX")
    >>> read_axes(folder / "stack.tif")
    'ZYX'
    >>> write_image(folder / "plane.png", np.zeros((16, 16), np.uint8))
    >>> print(read_axes(folder / "plane.png"))  # not a TIFF
    None
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            if f.read(4) not in _TIFF_MAGIC:
                return None
        import tifffile

        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes.upper().replace("S", "C")
    except Exception:  # unreadable metadata: read_image reports the file itself
        return None
    if set(axes) - set("TZCYX") or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        return None
    return axes


def read_scale(path: str | os.PathLike[str]) -> dict[str, object]:
    """A TIFF's pixel size: ``{"X": .., "Y": .., "Z": .., "unit": ..}`` with the entries it has,
    from the resolution tags (a size of 1 with no unit is TIFF's default, not a size) and the
    ImageJ or tifffile ``spacing`` and ``unit``; ``{}`` for other files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> size = {"X": 0.5, "Y": 0.5, "Z": 2.0, "unit": "um"}
    >>> write_image(folder / "stack.tif", np.zeros((3, 16, 16), np.uint16), "ZYX", size)
    >>> read_scale(folder / "stack.tif")
    {'X': 0.5, 'Y': 0.5, 'Z': 2.0, 'unit': 'um'}
    """
    path = Path(path)
    scale: dict[str, object] = {}
    try:
        with path.open("rb") as f:
            if f.read(4) not in _TIFF_MAGIC:
                return scale
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            meta = tif.imagej_metadata or (tif.shaped_metadata or ({},))[0] or {}
            sizes = {}
            for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
                if tag in tags:
                    num, den = tags[tag].value
                    sizes[letter] = den / num if num else None
            no_unit = "ResolutionUnit" not in tags or tags["ResolutionUnit"].value == 1
            if not (no_unit and "unit" not in meta and all(v == 1 for v in sizes.values())):
                scale.update({k: v for k, v in sizes.items() if v})
            if "spacing" in meta:
                scale["Z"] = float(meta["spacing"])
            if "unit" in meta:
                scale["unit"] = str(meta["unit"])
    except Exception:  # unreadable metadata: no scale, read_image reports the file itself
        return {}
    return scale


def check_writable(path: str | os.PathLike[str], dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Check, before any work, that an array of ``dtype`` and ``shape`` can be saved to ``path``.

    TIFF takes anything. PNG holds 8-bit greyscale, grey+alpha, RGB or RGBA, or 16-bit greyscale;
    JPEG holds 8-bit greyscale or RGB. Other combinations are refused (rather than silently
    rescaled), naming a format that works.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable(folder / "out.tif", np.float32, (16, 16))  # TIFF takes anything
    >>> check_writable(folder / "out.png", np.float32, (16, 16))
    Traceback (most recent call last):
    ...
    napari_dip.io.ImageFileError: .../out.png: PNG holds 8-bit grey/RGB(A) or 16-bit grey ...
    """
    path = Path(path)
    suffix = path.suffix.lower()
    dtype = np.dtype(dtype)
    if suffix not in WRITABLE_SUFFIXES:
        raise ImageFileError(
            f"{path}: unsupported output format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(WRITABLE_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise ImageFileError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ImageFileError(f"{path}: the folder {path.parent} is not writable")
    if path.is_dir():
        raise ImageFileError(f"{path}: is a folder, not a file")
    if suffix in TIFF_SUFFIXES:
        return
    channels = 1 if len(shape) == 2 else shape[-1]
    described = f"{dtype} data of shape {tuple(shape)}"
    if suffix in PNG_SUFFIXES:
        ok = (dtype == np.uint8 and (len(shape) == 2 or (len(shape) == 3 and channels <= 4))) or (
            dtype == np.uint16 and len(shape) == 2
        )
        if not ok:
            raise ImageFileError(
                f"{path}: PNG holds 8-bit grey/RGB(A) or 16-bit grey images, not {described}; "
                "write a .tif instead"
            )
    else:
        ok = dtype == np.uint8 and (len(shape) == 2 or (len(shape) == 3 and channels in (1, 3)))
        if not ok:
            raise ImageFileError(
                f"{path}: JPEG holds 8-bit grey or RGB images, not {described}; "
                "write a .png or .tif instead"
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    axes: str | None = None,
    scale: dict[str, object] | None = None,
) -> None:
    """Save ``image`` to ``path`` (format from the extension) without ever leaving half a file.

    The data go to a temporary file in the same folder, which then replaces ``path``. A TIFF
    records ``axes`` (e.g. ``"TZYX"``) in its metadata, so :func:`read_axes` reads them back,
    and ``scale`` (as :func:`read_scale` returns it) in its resolution tags and metadata.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> stack = np.zeros((2, 3, 16, 16), np.uint16)
    >>> write_image(folder / "movie.tif", stack, axes="TZYX")
    >>> read_image(folder / "movie.tif").shape, read_axes(folder / "movie.tif")
    ((2, 3, 16, 16), 'TZYX')
    >>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
    ['movie.tif']
    """
    path = Path(path)
    check_writable(path, image.dtype, image.shape)
    suffix = path.suffix.lower()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise ImageFileError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
        if suffix in TIFF_SUFFIXES:
            import tifffile

            rgb = image.ndim == 3 and image.shape[-1] in (3, 4) and axes in (None, "YXC")
            extra: dict = {} if axes is None or rgb else {"metadata": {"axes": axes}}
            size = scale or {}
            if "X" in size and "Y" in size:
                extra["resolution"] = (1 / float(size["X"]), 1 / float(size["Y"]))  # type: ignore[arg-type]
            if not rgb and ("Z" in size or "unit" in size):
                meta = extra.setdefault("metadata", {})
                meta |= {"spacing" if k == "Z" else k: size[k] for k in ("Z", "unit") if k in size}
            tifffile.imwrite(tmp_name, image, photometric="rgb" if rgb else "minisblack", **extra)
        else:
            import imageio.v3 as iio

            options = {"quality": 95} if suffix in JPEG_SUFFIXES else {}
            iio.imwrite(tmp_name, image, plugin="pillow", extension=suffix, **options)
        os.replace(tmp_name, path)
    except OSError as err:
        raise ImageFileError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def is_zarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Zarr store (a folder named ``*.zarr`` or holding Zarr metadata).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "cells.zarr").mkdir()
    >>> is_zarr(folder / "cells.zarr"), is_zarr(folder), is_zarr(folder / "cells.tif")
    (True, False, False)
    """
    path = Path(path)
    if not path.is_dir():
        return False
    names = (".zattrs", ".zgroup", ".zarray", "zarr.json")
    return path.suffix.lower() == ".zarr" or any((path / n).exists() for n in names)


def read_ome_zarr(path: str | os.PathLike[str]) -> tuple[object, str | None]:
    """Open an OME-Zarr image (its full-resolution level) or a plain Zarr array, lazily: the
    array is read piece by piece as it is restored. Returns the array and its axes letters
    from the OME metadata (``None`` when it has none). Raises :class:`ImageFileError`.

    Examples
    --------
    A small OME-Zarr store (zarr's own API), then read back:

    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import zarr
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.zarr"
    >>> root = zarr.open_group(str(store), mode="w")
    >>> _ = root.create_array("0", data=np.zeros((3, 16, 16), np.uint16))
    >>> root.attrs["multiscales"] = [{"axes": ["z", "y", "x"], "datasets": [{"path": "0"}]}]
    >>> image, axes = read_ome_zarr(store)
    >>> image.shape, image.dtype == np.uint16, axes
    ((3, 16, 16), True, 'ZYX')
    >>> image[0].shape  # pixels are read on indexing
    (16, 16)
    """
    path = Path(path)
    try:
        import zarr
    except ImportError:
        raise ImageFileError(
            f"{path}: reading OME-Zarr needs the 'zarr' package: pip install 'napari-dip[zarr]'"
        ) from None
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:
        raise ImageFileError(
            f"{path}: cannot read it as a Zarr store ({_first_line(err)})"
        ) from None
    if isinstance(node, zarr.Array):
        return _ZarrImage(node, path), None
    try:
        attrs = dict(node.attrs)
        ome = attrs.get("ome", {})
        multiscales = attrs.get("multiscales") or (
            ome.get("multiscales") if isinstance(ome, dict) else None
        )
        if not multiscales:
            arrays = [name for name, _ in node.arrays()]
            if len(arrays) != 1:
                raise ImageFileError(
                    f"{path}: a Zarr group without OME multiscales metadata and "
                    f"{len(arrays)} arrays: cannot tell which is the image"
                )
            return _ZarrImage(node[arrays[0]], path), None
    except ImageFileError:
        raise
    except Exception as err:
        raise ImageFileError(
            f"{path}: cannot read its Zarr metadata ({_first_line(err)})"
        ) from None
    try:
        scale = multiscales[0]
        dataset = scale["datasets"][0]["path"]
        names = [a["name"] if isinstance(a, dict) else a for a in scale.get("axes", [])]
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ImageFileError(
            f"{path}: its OME multiscales metadata is incomplete ({type(err).__name__}: {err})"
        ) from None
    try:
        array = node[dataset]
    except Exception as err:
        raise ImageFileError(
            f"{path}: the multiscales dataset {dataset!r} is missing or not a readable array "
            f"({type(err).__name__}: {_first_line(err)})"
        ) from None
    if not isinstance(array, zarr.Array):
        raise ImageFileError(f"{path}: the multiscales dataset {dataset!r} is not an array")
    axes = "".join(str(n).upper()[:1] for n in names) or None
    if axes is not None and (len(axes) != array.ndim or set(axes) - set("TZCYX")):
        axes = None
    return _ZarrImage(array, path), axes


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class ImageDataError(ImageFileError, ValueError):
    """Pixels of a lazily read file (a Zarr chunk) that cannot be read when their turn comes.
    A ``ValueError`` too, so a run reports it as bad input for that piece."""


class _ZarrImage:
    """A Zarr array read lazily, whose read errors (a corrupt or unreadable chunk) become
    :class:`ImageDataError` naming the store instead of a codec's own exception."""

    def __init__(self, array: object, path: Path) -> None:
        self._array = array
        self.path = path
        self.shape = tuple(int(n) for n in array.shape)  # type: ignore[attr-defined]
        self.dtype = np.dtype(array.dtype)  # type: ignore[attr-defined]
        self.ndim = len(self.shape)
        self.chunks = getattr(array, "chunks", None)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: object) -> np.ndarray:
        try:
            return np.asarray(self._array[index])  # type: ignore[index]
        except Exception as err:
            raise ImageDataError(
                f"{self.path}: cannot read its pixels ({type(err).__name__}: {_first_line(err)})"
            ) from None

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        values = self[...]
        return values if dtype is None else values.astype(dtype)

    def __repr__(self) -> str:
        return f"<Zarr image {self.path} {self.shape} {self.dtype}>"
