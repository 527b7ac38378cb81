"""Credit heatmaps: maps and overlays (maps), matplotlib panels (figures), HTML pages (html)."""

from t2i_gcpo.viz.maps import UPSAMPLING, colorize, overlay, token_maps, upsample

__all__ = ["UPSAMPLING", "colorize", "overlay", "token_maps", "upsample"]
