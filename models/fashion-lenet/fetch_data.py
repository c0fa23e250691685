"""Build Fashion-MNIST .npz files from the Debian package dataset-fashion-mnist (numpy only).

Usage:  python models/fashion-lenet/fetch_data.py [OUT_DIR] [--src DIR] [--force]

OUT_DIR defaults to this script's folder. Writes OUT_DIR/train.npz (60000 samples) always, and
OUT_DIR/test.npz (10000 samples) only if it is missing (or with --force). Each file holds
  x: uint8 [N, 784]  raw pixel values 0..255, row-major 28x28 images flattened
  y: int64 [N]       class labels 0..9
written with np.savez_compressed. The source is the IDX gz files under
/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist), or --src DIR.
train.npz is not committed (see .gitignore); test.npz is.
"""
import argparse
import gzip
import os
import sys

import numpy as np

DEFAULT_SRC = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}


def read_idx(path):
    """Read an IDX file (optionally gzipped): magic 0x0000 <type> <ndim>, big-endian u32 dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    if data[2] != 0x08:
        raise ValueError(f"{path}: expected unsigned byte data (0x08), got 0x{data[2]:02x}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - offset != count:
        raise ValueError(f"{path}: expected {count} bytes of data, found {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load(split, src=DEFAULT_SRC):
    """Return (x uint8 [N, 784], y int64 [N]) for split 'train' or 'test'."""
    images, labels, n = FILES[split]
    x = read_idx(os.path.join(src, images))
    y = read_idx(os.path.join(src, labels))
    if x.shape != (n, 28, 28) or y.shape != (n,):
        raise ValueError(f"unexpected shapes {x.shape} {y.shape} for {split}")
    return np.ascontiguousarray(x.reshape(n, 784)), y.astype(np.int64)


def write(split, out_dir, src=DEFAULT_SRC):
    x, y = load(split, src)
    path = os.path.join(out_dir, f"{split}.npz")
    np.savez_compressed(path, x=x, y=y)
    print(f"wrote {path}: x {x.dtype}{list(x.shape)} y {y.dtype}{list(y.shape)} ({os.path.getsize(path)} bytes)")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--src", default=DEFAULT_SRC, help="folder with the IDX .gz files")
    ap.add_argument("--force", action="store_true", help="rewrite test.npz even if it exists")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.src):
        sys.exit(f"{a.src} not found: apt-get install dataset-fashion-mnist, or pass --src")
    os.makedirs(a.out_dir, exist_ok=True)
    write("train", a.out_dir, a.src)
    if a.force or not os.path.exists(os.path.join(a.out_dir, "test.npz")):
        write("test", a.out_dir, a.src)
    else:
        print(f"kept existing {os.path.join(a.out_dir, 'test.npz')}")


if __name__ == "__main__":
    main()
