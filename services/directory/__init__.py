"""The organisation directory: city → county → township → village → grid, county departments
and command centres, demo users, and the dispatch catalogue (派单目录).

``demo_org.json`` is the demo organisation of 来宾市 (忻城县 城关镇, 兴宾区 迁江镇, 武宣县
武宣镇/通挽镇, 象州县 象州镇; 综治中心 at county, township and village level), written to be
read and edited by hand: indent 2, Chinese as is,
one line per polygon, user and catalogue entry. Coordinates are illustrative boxes of a few
hundred metres near the real towns, not official boundaries. ``shared.orgdata.load_org``
loads and checks it; ``intake.locate`` places appeals in it.

The package is also a small service (``python -m services.directory``, port 8006): the file
is its seed (version 1); after that the directory is edited through its admin API, every
change is validated as a whole and kept as a new version, and every version is published
on the topic ``org-directory``, which ``shared.orgfollow.OrgFollower`` follows in the other
services.
"""
