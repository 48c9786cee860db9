"""Media processing for ForYou: paths in, artifacts out. No web, no database.

Pipeline order (see ``media.steps``): probe -> transcode (+ poster) -> frames -> CLIP image embeddings
-> 16 kHz audio -> Whisper transcript -> WebVTT captions -> text embedding.
"""

from media.errors import MediaError, MediaRejected, TransientMediaError, is_permanent

__all__ = ["MediaError", "MediaRejected", "TransientMediaError", "is_permanent"]
