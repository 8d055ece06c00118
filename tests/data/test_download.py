"""minicnn.data.download: look-up, MD5 checks, atomic downloads from a local HTTP server, CIFAR-10.

The server runs on 127.0.0.1 (an ephemeral port) in a thread and serves:
  mnist/    copies of the real MNIST t10k .gz files (skipped if not available)
  corrupt/  t10k-labels-idx1-ubyte.gz with changed bytes (MD5 mismatch)
  empty/    nothing (404)
  short/    any name: announces 1000 bytes, sends 10, hangs up
  cifar10/  a small CIFAR-10 archive written by the tests
"""
import _pickle
import ast
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import re
import shutil
import tarfile
import threading

import numpy as np
import pytest
from conftest import DATA_ROOT, REPO, REQUIRE_DATA, dataset_dir

from minicnn import checkpoint
from minicnn.data import (CIFAR10, MNIST, ChecksumError, DataError, DataLoader, DatasetNotFoundError,
                          DownloadError, FashionMNIST, get_dataset)
from minicnn.data import download as dl
from minicnn.data.datasets import CIFAR_RECORD, read_cifar_batch, read_label_names

T10K = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def real_mnist_dir():
    """Folder with the real MNIST t10k .gz files (conftest.DATA_ROOT, found once at start-up), or None.

    Not read from the environment here: ``isolated`` below takes MINICNN_DATA away."""
    d = dataset_dir('mnist')
    return d if d and all(os.path.isfile(os.path.join(d, f)) for f in T10K) else None


@pytest.fixture
def mnist_gz():
    """The real MNIST t10k files as published (.gz): these tests serve or look them up, and the
    published MD5s are those of the .gz files. Skipped without them (a failure under CI=true)."""
    folder = real_mnist_dir()
    if folder is None:
        message = (f"the published MNIST t10k .gz files are not in {os.path.join(DATA_ROOT, 'mnist')}: "
                   "set MINICNN_DATA to a folder holding mnist/ as downloaded")
        (pytest.fail if REQUIRE_DATA else pytest.skip)(message)
    return folder


#: For the tests that need :func:`mnist_gz` without using its value.
needs_mnist = pytest.mark.usefixtures("mnist_gz")


def md5_of(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


# ----------------------------------------------------------------------------
# A small CIFAR-10 in the documented format
# ----------------------------------------------------------------------------

CIFAR_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
               'truck']


def write_fake_cifar(folder, per_batch=3, seed=0):
    """Write cifar-10-batches-bin/ (5 train batches + test batch + batches.meta.txt) under ``folder``,
    in the published binary format: per image one label byte, then the red, green, blue planes.

    Returns (train_x, train_y, test_x, test_y) as the loader should see them.
    """
    rng = np.random.default_rng(seed)
    d = os.path.join(folder, 'cifar-10-batches-bin')
    os.makedirs(d, exist_ok=True)
    xs, ys = [], []
    for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).astype(np.uint8)
        records = np.concatenate([labels[:, None], images.reshape(per_batch, -1)], axis=1)
        with open(os.path.join(d, name), 'wb') as f:
            f.write(records.tobytes())
        xs.append(images)
        ys.append(labels.astype(np.int64))
    with open(os.path.join(d, 'batches.meta.txt'), 'w') as f:
        f.write('\n'.join(CIFAR_NAMES) + '\n\n')
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def make_cifar_archive(path, src_folder):
    """Pack ``src_folder/cifar-10-batches-bin`` into a .tar.gz like the official one."""
    with tarfile.open(path, 'w:gz') as tar:
        tar.add(os.path.join(src_folder, 'cifar-10-batches-bin'), arcname='cifar-10-batches-bin')
    return path


@pytest.fixture(scope='module')
def fake_cifar(tmp_path_factory):
    """A fake CIFAR-10: its source folder, archive, arrays and checksums."""
    src = str(tmp_path_factory.mktemp('cifar-src'))
    arrays = write_fake_cifar(src)
    archive = make_cifar_archive(os.path.join(src, 'cifar-10-binary.tar.gz'), src)
    batches = os.path.join(src, 'cifar-10-batches-bin')
    md5s = {f: md5_of(os.path.join(batches, f)) for f in os.listdir(batches)}
    return {'src': src, 'archive': archive, 'arrays': arrays, 'md5s': md5s,
            'archive_md5': md5_of(archive)}


@pytest.fixture
def cifar_md5_override(monkeypatch, fake_cifar):
    """Make RESOURCES['cifar10'] expect the fake files' checksums."""
    res = dict(dl.RESOURCES['cifar10'])
    res['archive'] = (res['archive'][0], fake_cifar['archive_md5'])
    res['files'] = {f: fake_cifar['md5s'][f] for f in res['files']}
    monkeypatch.setitem(dl.RESOURCES, 'cifar10', res)
    return res


# ----------------------------------------------------------------------------
# The local HTTP server
# ----------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/short/'):
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            self.wfile.write(b'0123456789')
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server(tmp_path_factory, fake_cifar):
    """Serve a folder over HTTP on 127.0.0.1; yields (base_url, folder)."""
    root = tmp_path_factory.mktemp('www')
    for sub in ('mnist', 'corrupt', 'empty', 'cifar10'):
        (root / sub).mkdir()
    real = real_mnist_dir()
    if real:
        for f in T10K:
            shutil.copy(os.path.join(real, f), root / 'mnist' / f)
        bad = bytearray((root / 'mnist' / T10K[1]).read_bytes())
        bad[100:110] = b'corruption'
        (root / 'corrupt' / T10K[1]).write_bytes(bytes(bad))
        shutil.copy(os.path.join(real, T10K[0]), root / 'corrupt' / T10K[0])
    shutil.copy(fake_cifar['archive'], root / 'cifar10')
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}', root
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $MINICNN_DATA, no $MINICNN_MIRROR, an empty cache in tmp_path/cache."""
    monkeypatch.delenv('MINICNN_DATA', raising=False)
    monkeypatch.delenv('MINICNN_MIRROR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    return tmp_path




def leftovers(folder):
    """Temporary download / extraction files left in ``folder``."""
    return [f for f in os.listdir(folder) if f.endswith('.part') or f.startswith('.')]


# ----------------------------------------------------------------------------
# Look-up order
# ----------------------------------------------------------------------------

def test_search_roots_order(isolated, monkeypatch):
    cache = str(isolated / 'cache' / 'minicnn')
    assert dl.default_cache_dir() == cache
    assert dl.search_roots() == [cache]
    monkeypatch.setenv('MINICNN_DATA', str(isolated / 'env'))
    assert dl.search_roots(isolated / 'mine') == [str(isolated / 'mine'), str(isolated / 'env'),
                                                  cache]
    assert dl.candidate_dirs('mnist', isolated / 'mine')[:3] == [
        str(isolated / 'mine' / 'mnist'), str(isolated / 'mine'), str(isolated / 'env' / 'mnist')]
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(isolated / 'home'))
    assert dl.default_cache_dir() == str(isolated / 'home' / '.cache' / 'minicnn')


def test_mirrors_env_override(monkeypatch):
    monkeypatch.delenv('MINICNN_MIRROR', raising=False)
    assert dl.mirrors_for('mnist') == dl.MIRRORS['mnist']
    monkeypatch.setenv('MINICNN_MIRROR', 'http://a/{name}/, http://b/')
    assert dl.mirrors_for('fashion-mnist') == ['http://a/fashion-mnist/', 'http://b/']


@needs_mnist
def test_env_var_is_searched_before_cache(isolated, monkeypatch):
    monkeypatch.setenv('MINICNN_DATA', os.path.dirname(real_mnist_dir()))
    ds = MNIST(train=False, download=False)
    assert ds.root == real_mnist_dir()
    assert not (isolated / 'cache').exists()


# ----------------------------------------------------------------------------
# Checksums
# ----------------------------------------------------------------------------

def test_md5_is_computed_once_per_file_version(tmp_path):
    p = tmp_path / 'f.bin'
    p.write_bytes(b'a' * 1000)
    first = dl.md5sum(str(p))
    assert first == hashlib.md5(b'a' * 1000).hexdigest()
    st = os.stat(p)
    p.write_bytes(b'b' * 1000)                            # same size, mtime put back:
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dl.md5sum(str(p)) == first                     # ... served from the cache
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert dl.md5sum(str(p)) == hashlib.md5(b'b' * 1000).hexdigest()


def test_corrupt_local_file_gives_clear_error(isolated, monkeypatch, server):
    base, _ = server
    monkeypatch.setenv('MINICNN_MIRROR', f'{base}/mnist/')
    folder = isolated / 'root' / 'mnist'
    folder.mkdir(parents=True)
    bad = folder / 't10k-images-idx3-ubyte.gz'
    bad.write_bytes(b'not really gzip')
    found = hashlib.md5(b'not really gzip').hexdigest()
    with pytest.raises(ChecksumError) as err:
        MNIST(root=isolated / 'root', train=False)
    msg = str(err.value)
    assert str(bad) in msg and dl.RESOURCES['mnist']['files'][bad.name] in msg and found in msg
    assert 'Delete' in msg and 'download=True' in msg
    assert bad.read_bytes() == b'not really gzip'           # not silently replaced


# ----------------------------------------------------------------------------
# Downloads from the local server
# ----------------------------------------------------------------------------

@needs_mnist
def test_download_good_files_into_root(isolated, monkeypatch, server):
    base, _ = server
    monkeypatch.setenv('MINICNN_MIRROR', base + '/{name}')
    root = isolated / 'root'
    ds = MNIST(root=root, train=False, download=True)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert list(ds.targets[:10]) == T10K_FIRST_LABELS
    folder = root / 'mnist'
    assert sorted(os.listdir(folder)) == sorted(T10K) and not leftovers(folder)
    for f in T10K:
        assert md5_of(folder / f) == dl.RESOURCES['mnist']['files'][f]
    # found again locally, without the network
    monkeypatch.setenv('MINICNN_MIRROR', base + '/empty/')
    assert list(MNIST(root=root, train=False, download=False).targets[:10]) == T10K_FIRST_LABELS


@needs_mnist
def test_download_into_cache_via_module_mirrors(isolated, monkeypatch, server):
    base, _ = server
    monkeypatch.setitem(dl.MIRRORS, 'mnist', [base + '/empty/', base + '/mnist/'])   # 404, then good
    ds = get_dataset('mnist', train=False)
    assert list(ds.targets[:10]) == T10K_FIRST_LABELS
    assert ds.root == str(isolated / 'cache' / 'minicnn' / 'mnist')
    assert not leftovers(ds.root)


def test_missing_everywhere_gives_clear_error(isolated, monkeypatch, server):
    base, _ = server
    monkeypatch.setenv('MINICNN_MIRROR', base + '/empty/')
    with pytest.raises(DownloadError) as err:
        MNIST(root=isolated / 'root', train=False)
    msg = str(err.value)
    assert 't10k-images-idx3-ubyte.gz' in msg and '404' in msg and base + '/empty/' in msg
    assert 'MINICNN_MIRROR' in msg
    assert len(err.value.errors) == 1
    assert 'MINICNN_DATA' in msg and '--data-dir' in msg
    assert not (isolated / 'root' / 'mnist').exists()          # the folder it made for the files: gone again
    (isolated / 'root' / 'mnist').mkdir(parents=True)          # a folder that was there stays
    with pytest.raises(DownloadError):
        MNIST(root=isolated / 'root', train=False)
    assert os.listdir(isolated / 'root' / 'mnist') == []


@needs_mnist
def test_corrupt_download_is_discarded(isolated, monkeypatch, server):
    base, www = server
    monkeypatch.setenv('MINICNN_MIRROR', base + '/corrupt/')
    with pytest.raises(DownloadError) as err:
        MNIST(root=isolated / 'root', train=False)
    msg = str(err.value)
    expected = dl.RESOURCES['mnist']['files']['t10k-labels-idx1-ubyte.gz']
    found = md5_of(www / 'corrupt' / 't10k-labels-idx1-ubyte.gz')
    assert 't10k-labels-idx1-ubyte.gz' in msg and expected in msg and found in msg
    assert isinstance(err.value.errors[0][1], ChecksumError)
    folder = isolated / 'root' / 'mnist'
    assert not (folder / 't10k-labels-idx1-ubyte.gz').exists()     # never at the final name
    assert (folder / 't10k-images-idx3-ubyte.gz').exists()          # the good one was kept
    assert not leftovers(folder)


@needs_mnist
def test_corrupt_mirror_falls_back_to_good_one(isolated, monkeypatch, server):
    base, _ = server
    monkeypatch.setenv('MINICNN_MIRROR', f'{base}/corrupt/ {base}/mnist/')
    ds = MNIST(root=isolated / 'root', train=False)
    assert list(ds.targets[:10]) == T10K_FIRST_LABELS


def test_short_download_never_reaches_final_name(isolated, server):
    base, _ = server
    target = isolated / 'dl' / 'file.bin'
    with pytest.raises(DownloadError, match='file.bin'):
        dl.download_url(base + '/short/file.bin', str(target), progress=False)
    assert not target.exists() and not leftovers(target.parent)


def test_download_url_checks_md5(isolated, server, fake_cifar):
    base, _ = server
    target = isolated / 'dl' / 'cifar-10-binary.tar.gz'
    url = base + '/cifar10/cifar-10-binary.tar.gz'
    with pytest.raises(ChecksumError, match='0' * 32):
        dl.download_url(url, str(target), md5='0' * 32, progress=False)
    assert not target.exists() and not leftovers(target.parent)
    dl.download_url(url, str(target), md5=fake_cifar['archive_md5'], progress=False)
    assert md5_of(target) == fake_cifar['archive_md5']


# ----------------------------------------------------------------------------
# CIFAR-10 (small files in the documented format)
# ----------------------------------------------------------------------------

def check_cifar(ds, x, y):
    assert ds.data.shape == x.shape and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.data, x)
    np.testing.assert_array_equal(ds.targets, y)
    assert ds.classes == CIFAR_NAMES
    img, label = ds[1]
    assert img.shape == (3, 32, 32) and label == y[1]


def test_cifar_from_extracted_folder(isolated, cifar_md5_override, fake_cifar):
    tr_x, tr_y, te_x, te_y = fake_cifar['arrays']
    shutil.copytree(os.path.join(fake_cifar['src'], 'cifar-10-batches-bin'),
                    isolated / 'root' / 'cifar10' / 'cifar-10-batches-bin')
    ds = CIFAR10(root=isolated / 'root', train=True, download=False)
    assert len(ds) == 15
    check_cifar(ds, tr_x, tr_y)
    check_cifar(CIFAR10(root=isolated / 'root', train=False, download=False), te_x, te_y)
    # published checksums apply when not overridden: the fake batches are "corrupt"
    cifar_md5_override['files'] = dict(cifar_md5_override['files'],
                                       **{'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25'})
    with pytest.raises(ChecksumError, match='data_batch_1.bin'):
        CIFAR10(root=isolated / 'root', train=True, download=False)


def test_cifar_extracts_local_archive(isolated, cifar_md5_override, fake_cifar):
    tr_x, tr_y, _, _ = fake_cifar['arrays']
    folder = isolated / 'root' / 'cifar10'
    folder.mkdir(parents=True)
    shutil.copy(fake_cifar['archive'], folder)
    check_cifar(CIFAR10(root=isolated / 'root', download=False), tr_x, tr_y)
    assert (folder / 'cifar-10-batches-bin' / 'test_batch.bin').is_file()
    assert not leftovers(folder)


def test_cifar_downloads_and_extracts(isolated, monkeypatch, server, cifar_md5_override,
                                      fake_cifar):
    base, _ = server
    monkeypatch.setenv('MINICNN_MIRROR', base + '/{name}/')
    _, _, te_x, te_y = fake_cifar['arrays']
    ds = get_dataset('CIFAR-10', train=False)
    check_cifar(ds, te_x, te_y)
    cache = isolated / 'cache' / 'minicnn' / 'cifar10'
    assert (cache / 'cifar-10-binary.tar.gz').is_file() and not leftovers(cache)


def test_cifar_archive_with_wrong_md5(isolated, monkeypatch, fake_cifar):
    monkeypatch.setitem(dl.RESOURCES['cifar10'], 'archive',
                        ('cifar-10-binary.tar.gz', 'c32a1d4ab5d03f1284b67883e8d87530'))
    folder = isolated / 'root' / 'cifar10'
    folder.mkdir(parents=True)
    shutil.copy(fake_cifar['archive'], folder)
    with pytest.raises(ChecksumError) as err:
        CIFAR10(root=isolated / 'root', download=False)
    assert 'c32a1d4ab5d03f1284b67883e8d87530' in str(err.value)
    assert fake_cifar['archive_md5'] in str(err.value)
    assert not (folder / 'cifar-10-batches-bin').exists()


def test_cifar_not_found(isolated):
    with pytest.raises(DatasetNotFoundError, match='cifar-10-binary.tar.gz'):
        CIFAR10(root=isolated / 'root', download=False)


def test_unsafe_archive_member_is_refused(tmp_path):
    archive = tmp_path / 'evil.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        data = b'gotcha'
        info = tarfile.TarInfo('../escaped.txt')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / 'out'
    with pytest.raises(DataError, match='evil.tar.gz'):
        dl.extract_archive(str(archive), str(dest))
    assert not (tmp_path / 'escaped.txt').exists() and os.listdir(dest) == []


# ----------------------------------------------------------------------------
# Nothing a user supplies is ever unpickled
# ----------------------------------------------------------------------------

class _RunsCode:
    """Unpickling this creates a file (as a planted file could run any command)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def write_fake_mnist(folder, n=5, seed=0):
    """t10k IDX .gz files of ``n`` random images; returns their {name: md5}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    for name, array in zip(T10K, (images, labels)):
        head = bytes([0, 0, 8, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
        with gzip.open(os.path.join(folder, name), 'wb') as f:
            f.write(head + array.tobytes())
    return {name: md5_of(os.path.join(folder, name)) for name in T10K}, images, labels


def test_no_loader_unpickles_anything(isolated, monkeypatch, cifar_md5_override, fake_cifar):
    """Every loader runs with pickle disabled; a planted pickle (CIFAR's old batches.meta) is never opened."""
    root = isolated / 'root'
    shutil.copytree(os.path.join(fake_cifar['src'], 'cifar-10-batches-bin'), root / 'cifar10' / 'cifar-10-batches-bin')
    marker = isolated / 'code-ran'
    for folder in ('cifar-10-batches-bin', 'cifar-10-batches-py'):
        os.makedirs(root / 'cifar10' / folder, exist_ok=True)
        with open(root / 'cifar10' / folder / 'batches.meta', 'wb') as f:
            pickle.dump(_RunsCode(str(marker)), f)
    md5s, images, labels = write_fake_mnist(root / 'mnist')
    for dataset in ('mnist', 'fashion-mnist'):
        files = dict(dl.RESOURCES[dataset]['files'], **md5s)
        monkeypatch.setitem(dl.RESOURCES, dataset, dict(dl.RESOURCES[dataset], folder='mnist', files=files))
    ckpt = isolated / 'last.npz'
    checkpoint.save(ckpt, {'model': {'w': np.ones(3, np.float32)}, 'epoch': 1})

    def refuse(*args, **kwargs):
        raise AssertionError('pickle was called')
    for name in ('load', 'loads', 'Unpickler'):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(_pickle, 'Unpickler', refuse)

    _, _, te_x, te_y = fake_cifar['arrays']
    check_cifar(CIFAR10(root=root, train=False, download=False), te_x, te_y)
    assert len(CIFAR10(root=root, train=True, download=False)) == 15
    for cls in (MNIST, FashionMNIST):
        ds = cls(root=root, train=False, download=False)
        np.testing.assert_array_equal(ds.data[:, 0], images)
        np.testing.assert_array_equal(ds.targets, labels)
        assert sum(len(y) for _, y in DataLoader(ds, batch_size=2, shuffle=True, seed=0)) == 5
    assert checkpoint.load(ckpt)['epoch'] == 1
    assert not marker.exists()


def test_no_module_of_minicnn_imports_pickle():
    package = os.path.join(REPO, 'minicnn')
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith('.py'):
                tree = ast.parse(open(os.path.join(folder, name), encoding='utf-8').read())
                imported = {alias.name.split('.')[0] for node in ast.walk(tree)
                            if isinstance(node, (ast.Import, ast.ImportFrom))
                            for alias in (node.names if isinstance(node, ast.Import)
                                          else [ast.alias(node.module or '')])}
                assert not imported & {'pickle', '_pickle', 'cPickle', 'dill', 'shelve'}, name


def test_corrupt_cifar_files_are_refused(tmp_path):
    good = np.zeros((2, CIFAR_RECORD), np.uint8)
    (tmp_path / 'short.bin').write_bytes(good.tobytes()[:-1])
    with pytest.raises(DataError, match=r'short.bin: 6145 bytes is not a whole number of 3073-byte'):
        read_cifar_batch(str(tmp_path / 'short.bin'))
    (tmp_path / 'empty.bin').write_bytes(b'')
    with pytest.raises(DataError, match='empty.bin: 0 bytes'):
        read_cifar_batch(str(tmp_path / 'empty.bin'))
    bad = good.copy()
    bad[1, 0] = 10
    (tmp_path / 'label.bin').write_bytes(bad.tobytes())
    with pytest.raises(DataError, match='label.bin: record 1 has label 10'):
        read_cifar_batch(str(tmp_path / 'label.bin'))
    for content in (b'airplane\nautomobile\n', '\n'.join(CIFAR_NAMES[::-1]).encode(), b'\xff' * 50,
                    b'\n'.join(n.encode() for n in CIFAR_NAMES) * 100):
        (tmp_path / 'batches.meta.txt').write_bytes(content)
        with pytest.raises(DataError, match='batches.meta.txt: expected the CIFAR-10 class names'):
            read_label_names(str(tmp_path / 'batches.meta.txt'), CIFAR_NAMES)
    (tmp_path / 'batches.meta.txt').write_bytes(b'\n'.join(n.encode() for n in CIFAR_NAMES) + b'\r\n\n')
    assert read_label_names(str(tmp_path / 'batches.meta.txt'), CIFAR_NAMES) == CIFAR_NAMES


def test_the_published_cifar_checksums_are_those_of_the_binary_version():
    res = dl.RESOURCES['cifar10']
    assert res['archive'] == ('cifar-10-binary.tar.gz', 'c32a1d4ab5d03f1284b67883e8d87530')   # the Toronto page
    assert sorted(res['files']) == [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']
    assert all(re.fullmatch('[0-9a-f]{32}', md5) for md5 in res['files'].values())
    assert res['text_files'] == ['batches.meta.txt']
