"""Find dataset files on disk, or download them safely.

Where files are looked for, in this order:

1. the ``root`` argument, if one is given (``<root>/<folder>/<file>`` or
   ``<root>/<file>``),
2. ``$MINICNN_DATA`` (``<MINICNN_DATA>/<folder>/<file>``),
3. the user cache ``$XDG_CACHE_HOME/minicnn`` (default ``~/.cache/minicnn``).

``<folder>`` is ``mnist``, ``fashion-mnist`` or ``cifar10``. So with
``MINICNN_DATA=../shared/data`` the MNIST files are found in
``../shared/data/mnist/``.

A file that is found is checked against its published MD5 (once per process:
the result is remembered by path, size and modification time). A file that
is found nowhere is downloaded into ``<root>/<folder>/`` (or the cache when
no ``root`` is given), from the first mirror that works. A download goes to a
temporary file in the same folder, is checked, fsync'ed and only then renamed
to its real name, so a half-written or corrupt download is never used.

Mirrors are the base URLs in :data:`MIRRORS`. The environment variable
``MINICNN_MIRROR`` replaces them: one or more base URLs separated by commas
or spaces; ``{name}`` in a URL is replaced by the dataset folder name
(e.g. ``MINICNN_MIRROR=http://127.0.0.1:8000/{name}/``).

Only the standard library is used, plus ``tqdm`` for a progress bar when it
is installed.
"""
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request

from tqdm import tqdm

from ..fileio import atomic_write, fsync_dir, remove_stale_temporaries

# ----------------------------------------------------------------------------
# What each dataset is made of
# ----------------------------------------------------------------------------

#: Files of each dataset with their published MD5 checksums. ``None`` as a
#: checksum means "do not check" (tests use this for files they write).
#: CIFAR-10 comes as one archive that holds the batch files; its ``text_files``
#: have no published checksum and are checked by their reader instead.
RESOURCES = {
    'mnist': {
        'folder': 'mnist',
        'files': {
            'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
            'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
            't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
            't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
        },
        'unpacked': {   # the same files gunzipped (as torchvision keeps them); MD5s of the gunzipped published files
            'train-images-idx3-ubyte.gz': ('train-images-idx3-ubyte', '6bbc9ace898e44ae57da46a324031adb'),
            'train-labels-idx1-ubyte.gz': ('train-labels-idx1-ubyte', 'a25bea736e30d166cdddb491f175f624'),
            't10k-images-idx3-ubyte.gz': ('t10k-images-idx3-ubyte', '2646ac647ad5339dbf082846283269ea'),
            't10k-labels-idx1-ubyte.gz': ('t10k-labels-idx1-ubyte', '27ae3e4e09519cfbb04c329615203637'),
        },
    },
    'fashion-mnist': {
        'folder': 'fashion-mnist',
        'files': {
            'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
            'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
            't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
            't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
        },
        'unpacked': {
            'train-images-idx3-ubyte.gz': ('train-images-idx3-ubyte', 'f4a8712d7a061bf5bd6d2ca38dc4d50a'),
            'train-labels-idx1-ubyte.gz': ('train-labels-idx1-ubyte', '9018921c3c673c538a1fc5bad174d6f9'),
            't10k-images-idx3-ubyte.gz': ('t10k-images-idx3-ubyte', '8181f5470baa50b63fa0f6fddb340f0a'),
            't10k-labels-idx1-ubyte.gz': ('t10k-labels-idx1-ubyte', '15d484375f8d13e6eb1aabb0c3f46965'),
        },
    },
    'cifar10': {
        'folder': 'cifar10',
        # The binary version of https://www.cs.toronto.edu/~kriz/cifar.html ("suitable for C programs"):
        # fixed 3,073-byte records, so nothing is ever unpickled. The archive's MD5 is the one published
        # on that page. The batch files' MD5s are those other loaders of the extracted archive publish
        # (e.g. the Go package dldataset and several CMake fetch scripts, which agree); when minicnn
        # extracts the archive itself, its MD5 vouches for them too.
        'archive': ('cifar-10-binary.tar.gz', 'c32a1d4ab5d03f1284b67883e8d87530'),
        'subdir': 'cifar-10-batches-bin',
        'files': {
            'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
            'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
            'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
            'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
            'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
            'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
        },
        # No MD5 of it is published: read as text, and it must list the ten class names (see datasets.py).
        'text_files': ['batches.meta.txt'],
    },
}

#: Base URLs tried in order for each dataset (``MINICNN_MIRROR`` overrides).
MIRRORS = {
    'mnist': [
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
        'http://yann.lecun.com/exdb/mnist/',
    ],
    'fashion-mnist': [
        'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    ],
    'cifar10': [
        'https://www.cs.toronto.edu/~kriz/',
    ],
}

#: Seconds to wait for a server before giving up on a mirror.
TIMEOUT = 60.0


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------

class DataError(Exception):
    """Base class of the errors raised by ``minicnn.data``."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset file is not on disk and may not (or could not) be downloaded."""


class ChecksumError(DataError, ValueError):
    """A file's MD5 differs from the published one."""


class DownloadError(DataError, OSError):
    """No mirror delivered a good copy of a file; ``.errors`` lists why."""

    def __init__(self, message, errors=()):
        super().__init__(message)
        self.errors = list(errors)


# ----------------------------------------------------------------------------
# Where to look
# ----------------------------------------------------------------------------

def default_cache_dir():
    """Return the user cache folder: ``$XDG_CACHE_HOME/minicnn`` or ``~/.cache/minicnn``."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'minicnn')


def search_roots(root=None):
    """Return the data roots to search, in order: ``root``, ``$MINICNN_DATA``, the cache."""
    roots = []
    for r in (root, os.environ.get('MINICNN_DATA'), default_cache_dir()):
        if r:
            r = os.path.abspath(os.path.expanduser(os.fspath(r)))
            if r not in roots:
                roots.append(r)
    return roots


def download_dir(name, root=None):
    """Return the folder that downloads of dataset ``name`` go to."""
    base = os.path.abspath(os.path.expanduser(os.fspath(root))) if root else default_cache_dir()
    return os.path.join(base, RESOURCES[name]['folder'])


def candidate_dirs(name, root=None):
    """Return the folders that may hold the files of dataset ``name``, in search order.

    Each root contributes ``<root>/<folder>``; an explicit ``root`` also
    contributes itself, so ``root='../shared/data/mnist'`` works too.
    """
    folder = RESOURCES[name]['folder']
    dirs = []
    for r in search_roots(root):
        dirs.append(os.path.join(r, folder))
        if root and r == os.path.abspath(os.path.expanduser(os.fspath(root))):
            dirs.append(r)
    return dirs


def mirrors_for(name):
    """Return the base URLs to download dataset ``name`` from (``MINICNN_MIRROR`` wins)."""
    env = os.environ.get('MINICNN_MIRROR', '').strip()
    bases = re.split(r'[\s,]+', env) if env else list(MIRRORS[name])
    return [b.replace('{name}', RESOURCES[name]['folder']) for b in bases if b]


# ----------------------------------------------------------------------------
# Checksums (each file is hashed at most once per process)
# ----------------------------------------------------------------------------

_MD5_CACHE = {}   # realpath -> (size, mtime_ns, md5 hex)


def md5sum(path, chunk_size=1 << 20):
    """Return the MD5 hex digest of a file, remembered by (path, size, mtime)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (st.st_size, st.st_mtime_ns)
    hit = _MD5_CACHE.get(real)
    if hit is not None and hit[:2] == key:
        return hit[2]
    h = hashlib.md5(usedforsecurity=False)
    with open(real, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            h.update(block)
    digest = h.hexdigest()
    _MD5_CACHE[real] = key + (digest,)
    return digest


def check_md5(path, expected):
    """Raise :class:`ChecksumError` unless the file at ``path`` has MD5 ``expected``.

    ``expected=None`` skips the check.
    """
    if expected is None:
        return
    found = md5sum(path)
    if found != expected.lower():
        raise ChecksumError(
            f'{path} is corrupt or incomplete: MD5 expected {expected}, found {found}. '
            f'Delete this file and run again to download a fresh copy (the command lines do; in Python, '
            f'with download=True), or put a good copy in its place.')


# ----------------------------------------------------------------------------
# Downloading
# ----------------------------------------------------------------------------

def _progress_bar(total, desc, enabled):
    """Return a tqdm bar, or a do-nothing stand-in when disabled."""
    if enabled:
        return tqdm(total=total, desc=desc, unit='B', unit_scale=True, unit_divisor=1024, leave=False)

    class _NoBar:
        def update(self, n):
            pass

        def close(self):
            pass
    return _NoBar()


def download_url(url, path, md5=None, progress=True, timeout=None):
    """Download ``url`` to ``path`` atomically and check its MD5.

    The bytes go to a temporary file next to ``path``, which is fsync'ed and
    renamed to ``path`` only when complete and (if ``md5`` is given) correct.
    On any failure the temporary file is removed and the error raised:
    :class:`ChecksumError` for a wrong MD5, :class:`DownloadError` for a
    short or broken-off download, ``urllib.error.URLError``/``OSError`` for
    network errors (an HTTP error status is a ``urllib.error.HTTPError``).
    """
    filename = os.path.basename(path)
    request = urllib.request.Request(url, headers={'User-Agent': 'minicnn-data/1.0'})

    def fetch(out):     # streams into the temporary file; raising here leaves nothing behind
        h = hashlib.md5(usedforsecurity=False)
        got = 0
        with urllib.request.urlopen(request, timeout=timeout or TIMEOUT) as resp:
            total = resp.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            bar = _progress_bar(total, filename, progress)
            try:
                for block in iter(lambda: resp.read(1 << 16), b''):
                    out.write(block)
                    h.update(block)
                    got += len(block)
                    bar.update(len(block))
            except http.client.HTTPException as e:   # e.g. the server hung up mid-file
                raise DownloadError(f'{url}: download of {filename} broke off after {got} '
                                    f'bytes ({type(e).__name__})') from e
            finally:
                bar.close()
        if total is not None and got != total:
            raise DownloadError(f'{url}: incomplete download of {filename}, '
                                f'got {got} of {total} bytes')
        found = h.hexdigest()
        if md5 is not None and found != md5.lower():
            raise ChecksumError(f'{url}: downloaded {filename} has MD5 {found}, expected {md5}; '
                                f'the download was discarded')

    return atomic_write(path, fetch)


def download_file(name, filename, md5, folder, mirrors=None, progress=True):
    """Fetch ``filename`` of dataset ``name`` into ``folder``, trying each mirror in turn.

    Returns the final path. Raises :class:`DownloadError` naming every URL
    tried and why it failed when none delivered a good copy.
    """
    mirrors = mirrors_for(name) if mirrors is None else list(mirrors)
    path = os.path.join(folder, filename)
    existed = os.path.isdir(folder)
    errors = []
    for base in mirrors:
        url = base.rstrip('/') + '/' + filename
        try:
            return download_url(url, path, md5=md5, progress=progress)
        except (DataError, OSError, ValueError, http.client.HTTPException) as e:
            errors.append((url, e))
    lines = [str(err) if str(err).startswith(url) else f'{url}: {err}' for url, err in errors]
    tried = '\n'.join(f'  {line}' for line in lines) or '  (no mirrors configured)'
    if not existed:
        try:
            os.rmdir(folder)           # the folder this attempt made goes again, if it stayed empty
        except OSError:
            pass
    raise DownloadError(
        f'could not download {filename} ({name}, MD5 {md5}) into {folder}. Tried:\n{tried}\n'
        f'Check the network; or, where the files already are, set MINICNN_DATA (the command lines: '
        f'--data-dir) to the folder holding {name}/, or place a good copy at {path}; or point '
        f'MINICNN_MIRROR at a working mirror.', errors)


# ----------------------------------------------------------------------------
# Resolving dataset files
# ----------------------------------------------------------------------------

def _not_found(name, what, dirs, hint=''):
    looked = '\n'.join(f'  {d}' for d in dirs)
    return DatasetNotFoundError(
        f'{name}: {what} not found. Looked in:\n{looked}\n'
        f'Pass download=True to download it, set MINICNN_DATA to a folder holding '
        f'{RESOURCES[name]["folder"]}/, or pass root=...{hint}')


def find_file(name, filename, root=None, download=True, progress=True):
    """Return the path of a verified copy of ``filename`` of dataset ``name``.

    Searches :func:`candidate_dirs`; in each, ``filename`` or, for a ``.gz`` file listed under
    ``'unpacked'``, its gunzipped copy (as torchvision keeps the IDX files). The first copy
    found must have the right MD5 (else :class:`ChecksumError`). If there is none, downloads it
    when ``download`` is true, else raises :class:`DatasetNotFoundError`. Temporary files of
    downloads that were killed are removed from the folders searched.
    """
    md5 = RESOURCES[name]['files'][filename]
    unpacked = RESOURCES[name].get('unpacked', {}).get(filename)
    dirs = candidate_dirs(name, root)
    for d in dirs:
        remove_stale_temporaries(d)          # of downloads that were killed
        for f, expected in [(filename, md5)] + ([unpacked] if unpacked else []):
            path = os.path.join(d, f)
            if os.path.isfile(path):
                check_md5(path, expected)
                return path
    if not download:
        also = f' (or {unpacked[0]})' if unpacked else ''
        raise _not_found(name, f'file {filename}{also}', dirs)
    return download_file(name, filename, md5, download_dir(name, root), progress=progress)


def find_files(name, filenames, root=None, download=True, progress=True):
    """Return ``{filename: path}`` for each of ``filenames`` (see :func:`find_file`)."""
    if 'archive' in RESOURCES[name]:
        return find_archive_members(name, filenames, root, download, progress)
    return {f: find_file(name, f, root, download, progress) for f in filenames}


def _extract_all(archive, dest):
    """Extract every member of ``archive`` into ``dest``, refusing unsafe members."""
    try:
        with tarfile.open(archive, 'r:*') as tar:
            if hasattr(tarfile, 'data_filter'):
                tar.extractall(dest, filter='data')
            else:   # older Pythons: refuse members that would escape ``dest``
                base = os.path.realpath(dest)
                for m in tar.getmembers():
                    target = os.path.realpath(os.path.join(dest, m.name))
                    if not (target == base or target.startswith(base + os.sep)) \
                            or not (m.isfile() or m.isdir()):
                        raise DataError(f'{archive}: unsafe archive member {m.name!r}')
                tar.extractall(dest)
    except tarfile.TarError as e:
        raise DataError(f'{archive}: cannot extract: {e}. Delete it and download it again.') from e


def extract_archive(archive, dest):
    """Extract a .tar.gz into ``dest`` atomically: into a temp folder, then renamed.

    Each top-level entry of the archive is moved into ``dest`` only after the
    whole archive was read, so an interrupted extraction leaves nothing
    behind. Unsafe members (absolute paths, ``..``, devices) are refused.
    """
    os.makedirs(dest, exist_ok=True)
    remove_stale_temporaries(dest)                  # an extraction or download that was killed
    tmp = tempfile.mkdtemp(dir=dest, prefix=f'.extract-{os.getpid()}-')
    try:
        _extract_all(archive, tmp)
        for entry in os.listdir(tmp):
            final = os.path.join(dest, entry)
            if os.path.isdir(final) and not os.path.islink(final):
                shutil.rmtree(final)   # a stale or partial earlier extraction
            os.replace(os.path.join(tmp, entry), final)
        fsync_dir(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def find_archive_members(name, filenames, root=None, download=True, progress=True):
    """Return ``{filename: path}`` for files that ship inside the dataset's archive.

    For each candidate folder: use ``<folder>/<subdir>/`` if it holds all the
    files; else, if ``<folder>/<archive>`` exists, verify and extract it. When
    nothing is found, download the archive (if allowed) and extract it.
    Every file used is checked against its MD5 in :data:`RESOURCES` (its
    ``text_files``, which have none, by their reader).
    """
    res = RESOURCES[name]
    archive_name, archive_md5 = res['archive']
    subdir = res['subdir']

    def members(d):
        paths = {f: os.path.join(d, subdir, f) for f in filenames}
        if not all(os.path.isfile(p) for p in paths.values()):
            return None
        for f, p in paths.items():
            if f not in res.get('text_files', ()):
                check_md5(p, res['files'][f])
        return paths

    def extract_here(archive, folder):
        check_md5(archive, archive_md5)
        dest = folder if os.access(folder, os.W_OK) else download_dir(name, root)
        extract_archive(archive, dest)
        found = members(dest)
        if found is None:
            raise DataError(f'{archive} does not contain {subdir}/ with all of {sorted(filenames)}')
        return found

    dirs = candidate_dirs(name, root)
    for d in dirs:
        found = members(d)
        if found is not None:
            return found
        archive = os.path.join(d, archive_name)
        if os.path.isfile(archive):
            return extract_here(archive, d)
    if not download:
        raise _not_found(name, f'{subdir}/ (or {archive_name})', dirs)
    folder = download_dir(name, root)
    archive = download_file(name, archive_name, archive_md5, folder, progress=progress)
    return extract_here(archive, folder)
