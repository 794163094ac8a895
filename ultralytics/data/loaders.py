"""Prediction sources: image and video files, folders, globs, and in-memory numpy / PIL images.

Each loader is an iterable of batches ``(paths, images, infos)``: ``images`` are HxWx3 BGR uint8 arrays (what cv2
reads), ``paths`` name where each came from and ``infos`` are upstream's log prefixes such as
``"image 1/2 /data/a.jpg: "`` or ``"video 1/1 (frame 3/30) /data/v.mp4: "``. Frames are read lazily, one batch at a
time, so a long video never has to fit in memory.

This offline fork has no URL, webcam, stream or screenshot sources; asking for one fails with a clear message.
Part of the data floor: imports only ``ultralytics.utils`` and sibling ``data`` modules.
"""

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ultralytics.data.utils import IMG_FORMATS
from ultralytics.utils import LOGGER

__all__ = (
    "VID_FORMATS",
    "LoadImagesAndVideos",
    "LoadPilAndNumpy",
    "SourceTypes",
    "load_inference_source",
)

VID_FORMATS = frozenset({"asf", "avi", "gif", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg", "ts", "wmv", "webm"})
MEDIA_FORMATS = IMG_FORMATS | VID_FORMATS
MEDIA_HELP = (
    f"Supported image formats are {', '.join(sorted(IMG_FORMATS))}; "
    f"supported video formats are {', '.join(sorted(VID_FORMATS))}."
)
REMOTE_PREFIXES = ("http://", "https://", "rtsp://", "rtmp://", "tcp://")


@dataclass
class SourceTypes:
    """What kind of source a loader reads; the predictor names outputs and log lines after it (as upstream).

    Attributes:
        stream (bool): Live stream or webcam (never set in this offline fork).
        screenshot (bool): Screen capture (never set in this offline fork).
        from_img (bool): In-memory images (numpy arrays or PIL images).
        tensor (bool): A torch tensor batch (not supported by this fork).
    """

    stream: bool = False
    screenshot: bool = False
    from_img: bool = False
    tensor: bool = False


def _suffix(path):
    """Lower-case extension without the dot ('' when there is none)."""
    return Path(path).suffix[1:].lower()


def imread_bgr(path):
    """Read an image file as HxWx3 BGR uint8, or None when it cannot be decoded.

    cv2 decodes the common formats (and applies EXIF orientation); PIL is the fallback for formats such as some
    TIFF or WebP variants that the installed OpenCV build cannot read.
    """
    im = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if im is not None:
        return im
    try:
        with Image.open(path) as pil:
            return _pil_to_bgr(pil)
    except (OSError, ValueError):
        return None


def _pil_to_bgr(im):
    """PIL image (any mode, EXIF orientation applied) to a BGR uint8 array."""
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16"):  # convert() would clip 16-bit values at 255; keep the top 8 bits like cv2
        im = Image.fromarray((np.asarray(im) >> 8).astype(np.uint8))
    return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)


def _expand(entry):
    """Files named by one path, folder or glob, as absolute path strings (folder and glob results sorted).

    Raises:
        FileNotFoundError: When a path that is not a glob pattern does not exist, naming it.
        ValueError: When a file named directly is neither an image nor a video.
    """
    a = str(Path(entry).absolute())  # absolute but not resolved, so symlinked names survive (as upstream)
    if os.path.isfile(a):
        if _suffix(a) not in MEDIA_FORMATS:
            raise ValueError(f"source '{entry}' has unsupported suffix '{Path(a).suffix}'. {MEDIA_HELP}")
        return [a]
    if os.path.isdir(a):
        return sorted(glob.glob(os.path.join(glob.escape(a), "*.*")))
    if any(ch in a for ch in "*?["):
        return sorted(glob.glob(a, recursive=True))
    raise FileNotFoundError(f"source '{entry}' does not exist")


class LoadImagesAndVideos:
    """Batches of images and video frames from files, folders and globs, read only when asked for.

    A folder or glob keeps only files with an image or video suffix; a file named directly must have one. Images
    come first, then videos; a batch never mixes two videos, so each saved video gets only its own frames.

    Args:
        path (str | Path | list | tuple): A file, a folder, a glob pattern, or a list of these (order kept).
        batch (int): Images (or frames) per batch.
        vid_stride (int): Use every ``vid_stride``-th video frame.

    Raises:
        FileNotFoundError: A path that does not exist, or a folder/glob without any image or video.
        ValueError: A file named directly whose suffix is neither an image nor a video format.
    """

    def __init__(self, path, batch=1, vid_stride=1):
        """Resolve the file list and open the first video, if any, to read its frame count and fps."""
        entries = list(path) if isinstance(path, (list, tuple)) else [path]
        files = [f for entry in entries for f in _expand(entry) if _suffix(f) in MEDIA_FORMATS]
        if not files:
            raise FileNotFoundError(f"No images or videos found in {path}. {MEDIA_HELP}")
        images = [f for f in files if _suffix(f) in IMG_FORMATS]
        videos = [f for f in files if _suffix(f) in VID_FORMATS]
        self.files = images + videos
        self.nf, self.ni = len(self.files), len(images)
        self.video_flag = [False] * self.ni + [True] * len(videos)
        self.mode = "image" if self.ni else "video"
        self.bs = max(int(batch), 1)
        self.vid_stride = max(int(vid_stride), 1)
        self.cap, self.frame, self.frames, self.fps = None, 0, 0, 30.0
        self.count = 0
        if videos:
            self._open_video(videos[0])

    def __len__(self):
        """Number of files (a video counts once)."""
        return self.nf

    def __iter__(self):
        """Start from the first file."""
        self.count = 0
        return self

    def __next__(self):
        """Return the next ``(paths, images, infos)`` batch; a partial batch ends the images and each video."""
        paths, imgs, infos = [], [], []
        while len(imgs) < self.bs and self.count < self.nf:
            if self.video_flag[self.count]:
                self._next_frame(paths, imgs, infos)
                if self.cap is None and imgs:
                    break  # a video ended: flush, so that the next video starts a new batch
            else:
                self._next_image(paths, imgs, infos)
                if self.count >= self.ni and imgs:
                    break  # last image: flush before the videos start
        if not imgs:
            raise StopIteration
        return paths, imgs, infos

    def _next_image(self, paths, imgs, infos):
        """Read the current image file (a broken one is skipped with a warning) and move to the next file."""
        self.mode = "image"
        path = self.files[self.count]
        self.count += 1
        im = imread_bgr(path)
        if im is None:
            LOGGER.warning(f"Image Read Error {path}, skipping it")
            return
        paths.append(path)
        imgs.append(im)
        infos.append(f"image {self.count}/{self.nf} {path}: ")

    def _next_frame(self, paths, imgs, infos):
        """Append the next kept frame of the current video; at its end release it and move to the next file."""
        self.mode = "video"
        path = self.files[self.count]
        if self.cap is None:
            self._open_video(path)
        ok = all(self.cap.grab() for _ in range(self.vid_stride))
        im = self.cap.retrieve()[1] if ok else None
        if im is None:
            self._close_video()
            return
        self.frame += 1
        paths.append(path)
        imgs.append(im)
        infos.append(f"video {self.count + 1}/{self.nf} (frame {self.frame}/{self.frames}) {path}: ")
        if self.frame >= self.frames > 0:
            self._close_video()  # last counted frame: do not wait for a failed grab to notice the end

    def _open_video(self, path):
        """Open ``path`` and read its fps and frame count (after ``vid_stride``)."""
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            self.cap = None
            raise FileNotFoundError(f"Failed to open video {path}")
        self.frame = 0
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0  # some containers report 0
        self.frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) / self.vid_stride)

    def _close_video(self):
        """Release the current video and move on to the next file."""
        if self.cap is not None:
            self.cap.release()
        self.cap = None
        self.count += 1

    def close(self):
        """Release an open video, e.g. when the consumer stops early."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class LoadPilAndNumpy:
    """In-memory images (numpy BGR arrays or PIL images) as one batch, as upstream does.

    Args:
        im0 (np.ndarray | PIL.Image.Image | list): One image or a list of them. Numpy images are HxWx3 BGR (cv2
            order) or HxW grey; PIL images are converted from RGB.

    Raises:
        TypeError: An element that is neither a numpy array nor a PIL image.
        ValueError: An array that is not a single HxW or HxWxC image.
    """

    def __init__(self, im0):
        """Convert every image to HxWx3 BGR uint8 and name it after its file (PIL) or ``image{i}.jpg``."""
        im0 = list(im0) if isinstance(im0, (list, tuple)) else [im0]
        if not im0:
            raise FileNotFoundError("No images found in source: predict needs at least one image.")
        self.paths = [getattr(im, "filename", "") or f"image{i}.jpg" for i, im in enumerate(im0)]
        self.im0 = [self._to_bgr(im) for im in im0]
        self.mode = "image"
        self.bs = len(self.im0)
        self.count = 0

    @staticmethod
    def _to_bgr(im):
        """One image as a contiguous HxWx3 BGR uint8 array."""
        if isinstance(im, Image.Image):
            return _pil_to_bgr(im)
        if not isinstance(im, np.ndarray):
            raise TypeError(f"Expected a numpy array or PIL image, got {type(im).__name__}")
        if im.dtype == np.uint16:
            im = (im >> 8).astype(np.uint8)
        im = np.atleast_3d(im)
        if im.ndim != 3 or not all(im.shape) or im.shape[2] not in {1, 3, 4}:
            raise ValueError(f"Expected one HxW or HxWxC (C=1, 3 or 4) image, got an array of shape {im.shape}")
        if im.shape[2] == 1:
            im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
        elif im.shape[2] == 4:
            im = cv2.cvtColor(im, cv2.COLOR_BGRA2BGR)
        return np.ascontiguousarray(im)

    def __len__(self):
        """Number of images."""
        return len(self.im0)

    def __iter__(self):
        """Start over."""
        self.count = 0
        return self

    def __next__(self):
        """The single batch of all images, with empty log prefixes (the predictor adds ``'i: '``)."""
        if self.count:
            raise StopIteration
        self.count += 1
        return self.paths, self.im0, [""] * self.bs


def _is_path(x):
    return isinstance(x, (str, Path))


def _check_local(source):
    """Refuse sources this offline fork cannot open (URLs, streams, webcams, screen capture) with a clear message."""
    s = str(source).strip()
    if s.lower().startswith(REMOTE_PREFIXES) or s.lower().endswith(".streams"):
        raise NotImplementedError(f"source '{s}' is a URL or stream; this offline fork reads local files only")
    if s.isnumeric() or s.lower() == "screen" or s.lower().startswith("screen "):
        raise NotImplementedError(f"source '{s}' (webcam or screen capture) is not supported by this offline fork")


def cv2_single_thread():
    """Make OpenCV work in the calling thread (``cv2.setNumThreads(0)``), as upstream does when it is imported.

    Images are decoded and letterboxed one at a time beside torch's own threads (and, in loader workers, in several
    processes at once); OpenCV's thread pool on top of that only oversubscribes the cores, and upstream turns it off
    because it does not mix with DataLoader worker processes. Called where loading starts rather than at import, so
    that importing the package changes no global state.
    """
    cv2.setNumThreads(0)


def load_inference_source(source, batch=1, vid_stride=1):
    """Pick the loader for ``source`` and attach its ``source_type``.

    Args:
        source (str | Path | np.ndarray | PIL.Image.Image | list | tuple): A file, folder or glob; an image in
            memory; or a list of paths (read lazily, order kept) or of in-memory images.
        batch (int): Images per batch for a file, folder or glob. A list forms one batch of its entries, as
            upstream's does (which decides the letterbox), unless ``batch`` is larger.
        vid_stride (int): Use every ``vid_stride``-th video frame.

    Returns:
        (LoadImagesAndVideos | LoadPilAndNumpy): An iterable of ``(paths, images, infos)`` batches.

    Raises:
        FileNotFoundError: A missing path (named in the message) or nothing to read.
        ValueError: A file with an unsupported suffix.
        NotImplementedError: URLs, streams, webcams, screenshots and tensors, which this fork does not read.
        TypeError: Anything else.
    """
    if source is None:
        raise ValueError("predict needs a source: an image, video, folder, glob, numpy array or PIL image")
    cv2_single_thread()
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)
    if _is_path(source):
        _check_local(source)
        loader, from_img = LoadImagesAndVideos(source, batch=batch, vid_stride=vid_stride), False
    elif isinstance(source, (np.ndarray, Image.Image)):
        loader, from_img = LoadPilAndNumpy(source), True
    elif isinstance(source, (list, tuple)) and source and all(_is_path(x) for x in source):
        for x in source:
            _check_local(x)
        # One batch per list, as upstream batches a list: same-shaped images then share the minimum-rectangle
        # letterbox and mixed shapes all get the full square, so boxes match upstream's.
        loader = LoadImagesAndVideos(source, batch=max(batch, len(source)), vid_stride=vid_stride)
        from_img = False
    elif isinstance(source, (list, tuple)):
        images = [imread_or_raise(x) if _is_path(x) else x for x in source]
        loader, from_img = LoadPilAndNumpy(images), True
    elif type(source).__module__.startswith("torch"):
        raise NotImplementedError("torch.Tensor sources are not supported; pass HxWx3 BGR numpy arrays instead")
    else:
        raise TypeError(f"Unsupported source type {type(source).__name__}: use a path, folder, glob, numpy array, "
                        "PIL image or a list of these")  # fmt: skip
    loader.source_type = SourceTypes(from_img=from_img)
    return loader


def imread_or_raise(path):
    """Read an image for a mixed in-memory list, failing with the file's name instead of skipping it."""
    _check_local(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"source '{path}' does not exist")
    im = imread_bgr(str(path))
    if im is None:
        raise ValueError(f"source '{path}' could not be read as an image. {MEDIA_HELP}")
    return im
