"""Hub publishing: model card, merged export, upload."""

from llava_adapt.hub.errors import PublishError

__all__ = ["PublishError"]
