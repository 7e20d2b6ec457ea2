"""Jinghai District geography: its townships and distances on the ground."""

from __future__ import annotations

import math

# The 18 townships of Jinghai District (Tianjin) with approximate centres (lat, lon).
TOWNSHIPS: dict[str, tuple[float, float]] = {
    "静海镇": (38.947, 116.974),
    "唐官屯镇": (38.706, 116.912),
    "独流镇": (39.005, 116.925),
    "王口镇": (38.781, 116.754),
    "台头镇": (38.862, 116.716),
    "子牙镇": (38.781, 116.833),
    "陈官屯镇": (38.786, 116.937),
    "中旺镇": (38.733, 116.991),
    "大邱庄镇": (38.833, 116.985),
    "蔡公庄镇": (38.895, 116.853),
    "梁头镇": (38.663, 116.975),
    "团泊镇": (38.910, 117.146),
    "双塘镇": (38.920, 117.043),
    "大丰堆镇": (38.983, 117.098),
    "沿庄镇": (38.880, 116.925),
    "西翟庄镇": (38.835, 116.878),
    "良王庄乡": (39.030, 117.005),
    "杨成庄乡": (38.906, 116.778),
}

# A box around the district, used to reject coordinates that cannot be an address here.
DISTRICT_BOUNDS = {"lat": (38.55, 39.15), "lon": (116.60, 117.30)}

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def is_known_township(name: str) -> bool:
    return name in TOWNSHIPS
