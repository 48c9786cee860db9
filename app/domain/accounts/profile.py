"""A user's public profile: display name, bio and avatar.

An avatar upload is checked and rebuilt with Pillow before anything is stored: the bytes must decode as a
JPEG, PNG, WebP or GIF image (the decoder is chosen by content, never by file name), under a size and a pixel
limit checked from the header before any pixel is decoded (no decompression bombs), and fully decodable
(truncated files are refused). The stored file is a new 256x256 WebP made from those pixels: EXIF and every
other metadata block (GPS position, camera serial, ICC profile) are dropped, the EXIF orientation applied
first. It lives beside the videos' media, at ``<data dir>/media/avatars/<user id>/<random>.webp`` (so backups
and restores carry it with the media; ``users.avatar_path`` holds that path relative to the data dir, as account
deletion expects), and with object storage configured in the store too (through the same adapter as video
media, as ``avatar-<user id>``). ``/media/avatars/<user id>/<name>`` serves it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import unicodedata
import warnings
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from app.adapters.object_storage import LocalStorage, MediaStorage
from app.db.engine import Database
from app.db.models import User

log = logging.getLogger(__name__)

MAX_AVATAR_BYTES = 5 * 1024 * 1024
MAX_AVATAR_PIXELS = 40_000_000  # e.g. 8000 x 5000: a phone photo passes, a bomb does not
MIN_AVATAR_SIDE = 16
AVATAR_SIDE = 256
AVATAR_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
AVATAR_DIR = "avatars"  # inside the media dir
AVATAR_NAME = re.compile(r"^[0-9a-f]{16}\.webp$")
MAX_DISPLAY_NAME = 64
MAX_BIO = 280


class ProfileError(ValueError):
    """A profile edit that cannot be saved, with a message fit to show next to the form."""

    def __init__(self, message: str, field: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status_code = status_code


def process_avatar(data: bytes) -> bytes:
    """The uploaded bytes as a square ``AVATAR_SIDE`` WebP without metadata, or ``ProfileError``."""
    if not data:
        raise ProfileError("That file is empty. Choose a photo (JPEG, PNG, WebP or GIF).", "avatar")
    if len(data) > MAX_AVATAR_BYTES:
        raise ProfileError(f"That image is larger than {MAX_AVATAR_BYTES // (1024 * 1024)} MB. Choose a smaller "
                           "one.", "avatar", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=AVATAR_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ProfileError(f"That image has far too many pixels (at most {MAX_AVATAR_PIXELS // 1_000_000} "
                           "megapixels).", "avatar", 422) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ProfileError("That file is not an image we can read. Use a JPEG, PNG, WebP or GIF photo.",
                           "avatar", 422) from exc
    width, height = image.size
    if width * height > MAX_AVATAR_PIXELS:
        raise ProfileError(f"That image is {width}x{height} pixels: too large (at most "
                           f"{MAX_AVATAR_PIXELS // 1_000_000} megapixels).", "avatar", 422)
    if min(width, height) < MIN_AVATAR_SIDE:
        raise ProfileError(f"That image is only {width}x{height} pixels: use one at least {MIN_AVATAR_SIDE} "
                           "pixels on each side.", "avatar", 422)
    try:
        if image.format == "JPEG":
            image.draft("RGB", (AVATAR_SIDE * 2, AVATAR_SIDE * 2))  # decode at a reduced scale: less memory
        image.load()
        image = ImageOps.exif_transpose(image)  # a phone photo's orientation, applied before EXIF is dropped
        has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
        square = ImageOps.fit(image, (AVATAR_SIDE, AVATAR_SIDE), Image.Resampling.LANCZOS)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ProfileError("That image is damaged or incomplete. Try another photo.", "avatar", 422) from exc
    out = BytesIO()
    square.save(out, "WEBP", quality=85, method=4)  # new pixels, no exif/icc/xmp passed: no metadata written
    return out.getvalue()


def clean_text(raw: str, keep_newlines: bool) -> str:
    """Normalised (NFC) text without control characters; runs of spaces collapsed."""
    text = unicodedata.normalize("NFC", raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch == "\n" and keep_newlines or unicodedata.category(ch)[0] != "C")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(lines) if keep_newlines else " ".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def check_profile_text(display_name: str, bio: str) -> tuple[str, str]:
    name = clean_text(display_name, keep_newlines=False)
    about = clean_text(bio, keep_newlines=True)
    if len(name) > MAX_DISPLAY_NAME:
        raise ProfileError(f"Names are at most {MAX_DISPLAY_NAME} characters (that one has {len(name)}).", "name")
    if len(about) > MAX_BIO:
        raise ProfileError(f"Bios are at most {MAX_BIO} characters (that one has {len(about)}).", "bio")
    return name, about


def avatar_url(user: User | None) -> str | None:
    path = getattr(user, "avatar_path", None)
    return f"/{path}" if path else None


class ProfileService:
    def __init__(self, db: Database, data_dir: Path, media_dir: Path, storage: MediaStorage | None = None) -> None:
        self.db = db
        self.data_dir = data_dir
        self.media_dir = media_dir
        self.storage = storage or LocalStorage()

    def folder(self, user_id: str) -> Path:
        return self.media_dir / AVATAR_DIR / user_id

    def relative(self, user_id: str, name: str) -> str:
        """``users.avatar_path``: the file's path relative to the data dir (also its URL path)."""
        return (self.folder(user_id) / name).relative_to(self.data_dir).as_posix()

    @staticmethod
    def store_key(user_id: str) -> str:
        return f"avatar-{user_id}"

    async def update(self, user_id: str, display_name: str, bio: str, avatar: bytes | None = None,
                     remove_avatar: bool = False) -> User:
        """Check everything first, then store: a bad image leaves the profile (and the disk) as it was."""
        name, about = check_profile_text(display_name, bio)
        picture = await asyncio.to_thread(process_avatar, avatar) if avatar is not None else None
        new_path: str | None = None
        if picture is not None:
            new_path = await asyncio.to_thread(self._write, user_id, picture)
        try:
            async with self.db.write() as session:
                user = await session.get(User, user_id)
                if user is None:
                    raise ProfileError("That account no longer exists.", "name", 404)
                old_path = user.avatar_path
                user.display_name = name or user.username or ""
                user.bio = about
                if new_path is not None:
                    user.avatar_path = new_path
                elif remove_avatar:
                    user.avatar_path = None
        except BaseException:
            if new_path is not None:
                (self.data_dir / new_path).unlink(missing_ok=True)
            raise
        if old_path and old_path != user.avatar_path:
            await asyncio.to_thread(self._forget, user_id, old_path)
        return user

    def _write(self, user_id: str, picture: bytes) -> str:
        folder = self.folder(user_id)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.webp"  # a new name per picture: it can be cached for good
        tmp = folder / f"{name}.tmp"
        tmp.write_bytes(picture)
        tmp.replace(folder / name)
        try:
            self.storage.push(self.store_key(user_id), folder)
        except BaseException:
            (folder / name).unlink(missing_ok=True)
            raise
        return self.relative(user_id, name)

    def _forget(self, user_id: str, old_path: str) -> None:
        """The previous picture goes, locally and in the store."""
        (self.data_dir / old_path).unlink(missing_ok=True)
        folder = self.folder(user_id)
        try:
            self.storage.prune(self.store_key(user_id), folder)
        except Exception:  # noqa: BLE001 - a stale copy in the store is harmless (its name is no longer served)
            log.warning("could not prune an old avatar from the store", exc_info=True)
        if folder.is_dir() and not any(p for p in folder.iterdir() if not p.name.startswith(".")):
            shutil.rmtree(folder, ignore_errors=True)

    async def file_for(self, user_id: str, name: str) -> tuple[Path, bool] | None:
        """(local path, whether it is only in the store) of a user's current avatar, or None."""
        if not AVATAR_NAME.match(name):
            return None
        async with self.db.read() as session:
            current = (await session.execute(select(User.avatar_path).where(User.id == user_id))).scalar_one_or_none()
        if current != self.relative(user_id, name):
            return None
        path = self.folder(user_id) / name
        return path, not path.is_file()
