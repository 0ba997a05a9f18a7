"""An offline container image for the guide's Part V: Debian's static busybox as an OCI image archive, for
`ctr image import` (no registry, no network)."""

import hashlib
import io
import json
import os
import struct
import tarfile
from pathlib import Path

#: The ELF program header of a program's dynamic loader.
PT_INTERP = 3
#: The applets the image links to busybox.
APPLETS = ("sh", "ping", "ip", "sleep", "cat", "echo", "ifconfig", "hostname")


def _blob(layout: tarfile.TarFile, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add(layout, f"blobs/sha256/{digest[7:]}", data)
    return {"digest": digest, "size": len(data)}


def _add(archive: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644, **kinds: object) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    for key, value in kinds.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def rootfs(busybox: Path = Path("/bin/busybox")) -> bytes:
    """The image's one layer, a root file system as a tar archive: busybox and its applet links (what
    `podman import` takes as an image)."""
    layer_bytes = io.BytesIO()
    with tarfile.open(fileobj=layer_bytes, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for directory in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            _add(layer, directory, mode=0o755, type=tarfile.DIRTYPE)
        _add(layer, "bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in APPLETS:
            _add(layer, f"bin/{applet}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
    return layer_bytes.getvalue()


def archive(path: Path, image: str, busybox: Path = Path("/bin/busybox")) -> None:
    """An OCI image archive of Debian's static busybox, built offline, for `ctr image import`."""
    layer_data = rootfs(busybox)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as layout:
        _add(layout, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        layer_ref = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(layout, layer_data)}
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_ref["digest"]]},
        }
        config_ref = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(config).encode())}
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_ref, "layers": [layer_ref]}
        manifest_ref = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **_blob(layout, json.dumps(manifest).encode()),
                        "platform": {"architecture": arch, "os": "linux"},
                        "annotations": {"io.containerd.image.name": image,
                                        "org.opencontainers.image.ref.name": image.rsplit(":", 1)[1]}}
        _add(layout, "index.json", json.dumps({"schemaVersion": 2, "manifests": [manifest_ref]}).encode())


def is_static(path: Path) -> bool:
    """Whether the ELF program at `path` runs without a dynamic loader (it has no PT_INTERP program header): an
    image holding it alone needs no libraries."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit: e_phoff at 0x20, e_phentsize and e_phnum at 0x36
        (offset,), (entry_size, count) = struct.unpack_from(order + "Q", data, 0x20), struct.unpack_from(order + "HH", data, 0x36)
    else:  # 32-bit: e_phoff at 0x1c, e_phentsize and e_phnum at 0x2a
        (offset,), (entry_size, count) = struct.unpack_from(order + "I", data, 0x1C), struct.unpack_from(order + "HH", data, 0x2A)
    return all(struct.unpack_from(order + "I", data, offset + n * entry_size)[0] != PT_INTERP for n in range(count))
