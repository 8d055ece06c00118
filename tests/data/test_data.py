"""minicnn.data: the real MNIST / Fashion-MNIST files, the DataLoader and the transforms.

The real files are found through $MINICNN_DATA (set by .ci/run), else
<repo>/../shared/data (see conftest.py); without them those tests are skipped, or fail under CI=true.
"""
import gzip
import json
import os
import shutil

import numpy as np
import pytest

from minicnn.data import (CIFAR10_MEAN, CIFAR10_STD, MNIST, ChecksumError, MNIST_MEAN, MNIST_STD, ArrayDataset,
                          Compose, DataLoader, DatasetNotFoundError, FashionMNIST, Normalize, Pad,
                          RandomCrop, RandomHorizontalFlip, Resize, ToFloat, get_dataset,
                          normalize_for)

@pytest.fixture(scope='module')
def real_data(tmp_path_factory, mnist_dir):
    """Point MINICNN_DATA at the real files (never download; an empty cache) for this module."""
    root = os.path.dirname(mnist_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MINICNN_DATA', root)
        mp.setenv('XDG_CACHE_HOME', str(tmp_path_factory.mktemp('cache')))
        mp.delenv('MINICNN_MIRROR', raising=False)
        yield root


@pytest.fixture(scope='module')
def mnist_train(real_data):
    """MNIST train, loaded once for the module (through $MINICNN_DATA, no root argument)."""
    return MNIST(train=True, download=False)


# ----------------------------------------------------------------------------
# Real datasets
# ----------------------------------------------------------------------------

def test_mnist_train_arrays(mnist_train, real_data):
    ds = mnist_train
    assert len(ds) == 60000
    assert ds.data.shape == (60000, 1, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.shape == (60000,) and ds.targets.dtype == np.int64
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.root == os.path.join(real_data, 'mnist')
    assert list(np.bincount(ds.targets)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    assert list(ds.targets[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.data.min() == 0 and ds.data.max() == 255


def test_mnist_pixel_statistics(mnist_train):
    # exact mean / std of pixel/255 from the histogram of the 47M pixel values
    data = mnist_train.data
    counts = sum(np.bincount(data[i:i + 5000].ravel(), minlength=256)   # chunks: fast, small
                 for i in range(0, len(data), 5000)).astype(np.float64)
    v = np.arange(256) / 255.0
    mean = (counts * v).sum() / counts.sum()
    std = np.sqrt((counts * (v - mean) ** 2).sum() / counts.sum())
    assert mean == pytest.approx(0.130660, abs=1e-6) and round(mean, 4) == MNIST_MEAN
    assert std == pytest.approx(0.308108, abs=1e-6) and round(std, 4) == MNIST_STD


def test_mnist_getitem(mnist_train):
    x, y = mnist_train[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.uint8 and y == 5 and isinstance(y, int)
    xb, yb = mnist_train[np.array([1, 2, 3])]
    assert xb.shape == (3, 1, 28, 28) and list(yb) == [0, 4, 1]
    with_tf = ArrayDataset(mnist_train.data, mnist_train.targets, transform=ToFloat())
    x, y = with_tf[0]
    assert x.dtype == np.float32 and x.shape == (1, 28, 28) and x.max() == 1.0


def test_mnist_test_split_and_explicit_root(real_data):
    ds = MNIST(root=os.path.join(real_data, 'mnist'), train=False, download=False)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert list(ds.targets[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert list(np.bincount(ds.targets)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist(real_data, fashion_mnist_dir):
    ds = FashionMNIST(train=True, download=False)
    assert ds.data.shape == (60000, 1, 28, 28) and ds.data.dtype == np.uint8
    assert list(ds.targets[:10]) == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert list(np.bincount(ds.targets)) == [6000] * 10
    assert ds.classes[9] == 'Ankle boot'
    test = get_dataset('Fashion_MNIST', train=False, download=False, data_dir=real_data)
    assert isinstance(test, FashionMNIST) and len(test) == 10000
    assert list(test.targets[:10]) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def test_get_dataset_names(real_data):
    assert isinstance(get_dataset('MNIST', train=False, download=False), MNIST)
    with pytest.raises(ValueError, match='unknown dataset'):
        get_dataset('imagenet')


def test_missing_files_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv('MINICNN_DATA', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    with pytest.raises(DatasetNotFoundError) as err:
        MNIST(root=tmp_path / 'nothing', train=False, download=False)
    msg = str(err.value)
    assert 't10k-images-idx3-ubyte.gz' in msg and 'download=True' in msg
    assert str(tmp_path / 'nothing') in msg and 'MINICNN_DATA' in msg


def test_loader_normalised_mnist(mnist_train):
    loader = DataLoader(mnist_train, batch_size=10000, transform=normalize_for('mnist'))
    assert len(loader) == 6
    total = total_sq = count = 0.0
    for x, _ in loader:
        assert x.dtype == np.float32 and x.shape == (10000, 1, 28, 28)
        x = x.ravel().astype(np.float64)
        total, total_sq, count = total + x.sum(), total_sq + x @ x, count + x.size
    mean = total / count
    assert abs(mean) < 1e-3 and abs(np.sqrt(total_sq / count - mean ** 2) - 1) < 1e-3


def test_pad_for_lenet(mnist_train):
    x, y = next(iter(DataLoader(mnist_train, 8, transform=Compose([ToFloat(), Pad(2)]))))
    assert x.shape == (8, 1, 32, 32) and list(y) == [5, 0, 4, 1, 9, 2, 1, 3]
    np.testing.assert_array_equal(x[:, :, 2:30, 2:30], mnist_train.data[:8] / np.float32(255))


# ----------------------------------------------------------------------------
# DataLoader
# ----------------------------------------------------------------------------

def toy(n=10):
    """n samples whose label is their index and whose pixels all equal the index."""
    x = np.repeat(np.arange(n, dtype=np.uint8), 4).reshape(n, 1, 2, 2)
    return x, np.arange(n)


def labels_of(loader):
    return [y.tolist() for _, y in loader]


def test_loader_batches_and_drop_last():
    x, y = toy(10)
    loader = DataLoader((x, y), batch_size=3)
    assert len(loader) == 4
    assert labels_of(loader) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    dropped = DataLoader((x, y), batch_size=3, drop_last=True)
    assert len(dropped) == 3 and [len(b) for b in labels_of(dropped)] == [3, 3, 3]
    assert len(DataLoader((x, y), batch_size=10, drop_last=True)) == 1
    assert len(DataLoader((x, y), batch_size=11, drop_last=True)) == 0
    assert len(DataLoader((x, y))) == 10


def test_loader_types_and_default_scaling():
    x, y = toy(4)
    xb, yb = next(iter(DataLoader((x, y.astype(np.uint8)), batch_size=4)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb[:, 0, 0, 0], np.arange(4, dtype=np.float32) / 255)
    # float data is only cast, and batches never alias the stored arrays
    xf = np.random.default_rng(0).random((4, 1, 2, 2))
    xb, _ = next(iter(DataLoader((xf, y), batch_size=2)))
    assert xb.dtype == np.float32
    xb[:] = -1
    assert xf.min() >= 0


def test_loader_rejects_bad_input():
    with pytest.raises(TypeError):
        DataLoader(np.zeros((3, 1, 2, 2)))
    with pytest.raises(ValueError):
        DataLoader((np.zeros((3, 1)), np.zeros(2)))
    with pytest.raises(ValueError):
        DataLoader(toy(3), batch_size=0)


def test_shuffle_is_seeded_and_each_epoch_is_a_permutation():
    x, y = toy(50)
    a = DataLoader((x, y), batch_size=8, shuffle=True, seed=123)
    b = DataLoader((x, y), batch_size=8, shuffle=True, seed=123)
    epochs_a = [sum(labels_of(a), []) for _ in range(3)]
    epochs_b = [sum(labels_of(b), []) for _ in range(3)]
    assert epochs_a == epochs_b
    for order in epochs_a:
        assert sorted(order) == list(range(50))           # every sample exactly once
    assert epochs_a[0] != epochs_a[1] != epochs_a[2]      # reshuffled every epoch
    assert epochs_a[0] != list(range(50))
    other = DataLoader((x, y), batch_size=8, shuffle=True, seed=124)
    assert sum(labels_of(other), []) != epochs_a[0]
    # images follow their labels
    for xb, yb in a:
        np.testing.assert_array_equal(xb[:, 0, 0, 0] * 255, yb.astype(np.float32))


def test_order_depends_only_on_seed_and_epoch():
    x, y = toy(30)
    a = DataLoader((x, y), batch_size=4, shuffle=True, seed=7)
    runs = [sum(labels_of(a), []) for _ in range(3)]
    b = DataLoader((x, y), batch_size=4, shuffle=True, seed=7)
    b.set_epoch(2)
    assert sum(labels_of(b), []) == runs[2]
    assert list(a.order(1)) == runs[1]
    assert b.epoch == 3


def test_unseeded_loader_records_its_seed():
    x, y = toy(100)
    a = DataLoader((x, y), batch_size=100, shuffle=True)
    b = DataLoader((x, y), batch_size=100, shuffle=True)
    assert a.seed != b.seed
    first = labels_of(a)
    again = DataLoader((x, y), batch_size=100, shuffle=True, seed=a.seed)
    assert labels_of(again) == first


def test_resume_mid_epoch_reproduces_order_and_augmentation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(37, 3, 8, 8), dtype=np.uint8)
    y = np.arange(37)
    aug = Compose([ToFloat(), RandomCrop(8, padding=2), RandomHorizontalFlip()])

    def run(loader, n_batches):
        out = []
        while len(out) < n_batches:
            for xb, yb in loader:
                out.append((xb, yb))
                if len(out) == n_batches:
                    break
        return out

    ref = run(DataLoader((x, y), 5, shuffle=True, seed=3, transform=aug), 20)   # 8 per epoch
    first = DataLoader((x, y), 5, shuffle=True, seed=3, transform=aug)
    head = run(first, 11)                                        # epoch 1, 3 batches in
    state = json.loads(json.dumps(first.state_dict()))
    assert state['epoch'] == 1 and state['batch'] == 3
    resumed = DataLoader((x, y), 5, shuffle=True, seed=999, transform=aug)
    resumed.load_state_dict(state)
    tail = run(resumed, 9)
    for (xa, ya), (xb, yb) in zip(ref, head + tail, strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_state_after_full_epoch_and_mismatch():
    x, y = toy(10)
    loader = DataLoader((x, y), 4, shuffle=True, seed=0)
    assert loader.state_dict()['epoch'] == 0 and loader.state_dict()['batch'] == 0
    labels_of(loader)
    assert (loader.state_dict()['epoch'], loader.state_dict()['batch']) == (1, 0)
    with pytest.raises(ValueError, match='batch_size'):
        DataLoader((x, y), 5, shuffle=True).load_state_dict(loader.state_dict())
    # a state saved right after an epoch's last batch resumes at the next epoch
    state = dict(loader.state_dict(), epoch=0, batch=3)
    fresh = DataLoader((x, y), 4, shuffle=True, seed=0)
    fresh.load_state_dict(state)
    assert sum(labels_of(fresh), []) == list(loader.order(1))


def test_new_iteration_starts_a_new_epoch():
    x, y = toy(12)
    loader = DataLoader((x, y), 4)
    next(iter(loader))                       # peeking must not eat into the next pass
    assert labels_of(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_dataset_transform_used_by_loader():
    x, y = toy(6)
    ds = ArrayDataset(x, y, transform=Normalize(0.5, 0.25))
    xb, _ = next(iter(DataLoader(ds, 6)))
    np.testing.assert_allclose(xb[:, 0, 0, 0], (np.arange(6) / 255 - 0.5) / 0.25, rtol=1e-6)
    xb, _ = next(iter(DataLoader(ds, 6, transform=lambda b: b.astype(np.float32) * 2)))
    np.testing.assert_array_equal(xb[:, 0, 0, 0], np.arange(6) * 2)


# ----------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------

def test_to_float():
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 1, 3)
    out = ToFloat()(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.ravel(), np.array([0, 0.2, 1], dtype=np.float32))
    f = np.array([[[[0.5]]]])
    assert ToFloat()(f).dtype == np.float32 and ToFloat()(f).item() == 0.5


def test_normalize_per_channel_by_hand():
    x = np.array([[[[0.0, 1.0]], [[0.5, 0.25]]]], dtype=np.float32)      # (1, 2, 1, 2)
    out = Normalize((0.5, 0.25), (0.5, 0.125))(x)
    np.testing.assert_allclose(out, [[[[-1.0, 1.0]], [[2.0, 0.0]]]])
    assert out.dtype == np.float32
    u = np.array([0, 255], dtype=np.uint8).reshape(1, 1, 1, 2)          # uint8 scaled first
    np.testing.assert_allclose(Normalize(MNIST_MEAN, MNIST_STD)(u).ravel(),
                               [-0.1307 / 0.3081, (1 - 0.1307) / 0.3081], rtol=1e-6)
    rgb = np.ones((2, 3, 4, 4), dtype=np.float32)
    np.testing.assert_allclose(Normalize(CIFAR10_MEAN, CIFAR10_STD)(rgb)[1, :, 0, 0],
                               (1 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD), rtol=1e-6)
    with pytest.raises(ValueError):
        Normalize(0, 0)


def test_pad():
    x = np.arange(1, 5, dtype=np.uint8).reshape(1, 1, 2, 2)
    out = Pad(1)(x)
    np.testing.assert_array_equal(out[0, 0], [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0],
                                              [0, 0, 0, 0]])
    assert Pad((1, 2))(x).shape == (1, 1, 4, 6)
    assert Pad(2)(np.zeros((1, 28, 28))).shape == (1, 32, 32)       # a single image


def test_random_crop_windows_and_seeding():
    n, h = 64, 6
    x = np.broadcast_to(np.arange(1, h * h + 1, dtype=np.int64).reshape(1, 1, h, h),
                        (n, 2, h, h)).copy()
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    out = RandomCrop(h, padding=2, rng=0)(x)
    assert out.shape == (n, 2, h, h)
    offsets = set()
    for i in range(n):   # find where each crop came from; it must be exactly that window
        hits = [(t, l) for t in range(5) for l in range(5)
                if np.array_equal(padded[i, :, t:t + h, l:l + h], out[i])]
        assert hits, f'sample {i} is not a window of the padded image'
        offsets.add(hits[0])
    assert len(offsets) > 10                          # offsets drawn per sample
    np.testing.assert_array_equal(out, RandomCrop(h, padding=2, rng=0)(x))   # seeded
    np.testing.assert_array_equal(RandomCrop(h, rng=1)(x), x)                # no padding: identity
    small = RandomCrop(3)(x[:, :1])
    assert small.shape == (n, 1, 3, 3)
    t = RandomCrop(h, padding=2, rng=5)
    np.testing.assert_array_equal(t(x, rng=np.random.default_rng(0)), out)  # call rng wins


def test_random_horizontal_flip():
    x = np.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x),
                                  [[[[2, 1, 0], [5, 4, 3]]], [[[8, 7, 6], [11, 10, 9]]]])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    many = np.random.default_rng(0).random((100, 3, 4, 4))
    keep = many.copy()
    out = RandomHorizontalFlip(rng=3)(many)
    np.testing.assert_array_equal(many, keep)                     # input untouched
    flipped = np.array([np.array_equal(o, m[..., ::-1]) for o, m in zip(out, many)])
    same = np.array([np.array_equal(o, m) for o, m in zip(out, many)])
    assert np.all(flipped ^ same) and 20 < flipped.sum() < 80
    np.testing.assert_array_equal(out, RandomHorizontalFlip(rng=3)(many))


def test_resize_nearest_and_bilinear_by_hand():
    x = np.array([[0, 1], [2, 3]], dtype=np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(Resize(4)(x)[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1],
                                                       [2, 2, 3, 3], [2, 2, 3, 3]])
    np.testing.assert_allclose(Resize(4, mode='bilinear')(x)[0, 0],
                               [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5],
                                [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]])
    img = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    big = Resize(56)(img)
    assert big.dtype == np.uint8
    np.testing.assert_array_equal(big, img.repeat(2, axis=2).repeat(2, axis=3))
    np.testing.assert_array_equal(Resize(28, mode='bilinear')(img), img)
    up = Resize((32, 40), mode='bilinear')(img)
    assert up.shape == (3, 1, 32, 40) and up.dtype == np.uint8
    const = np.full((1, 2, 5, 5), 0.7, dtype=np.float32)
    np.testing.assert_allclose(Resize(9, mode='bilinear')(const), 0.7, rtol=1e-6)
    with pytest.raises(ValueError):
        Resize(4, mode='cubic')


def test_compose_passes_rng_only_to_transforms():
    x = np.full((2, 1, 4, 4), 255, dtype=np.uint8)
    tf = Compose([ToFloat(), lambda b: b * 2, RandomCrop(2, rng=0)])
    out = tf(x, rng=np.random.default_rng(1))
    assert out.shape == (2, 1, 2, 2) and np.all(out == 2.0)
    assert 'RandomCrop' in repr(tf)


def test_gunzipped_idx_files_are_accepted_and_checked(real_data, tmp_path):
    """As torchvision keeps them: train-images-idx3-ubyte without .gz, checked against its own MD5."""
    folder = tmp_path / 'mnist'
    folder.mkdir()
    for name in ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'):
        source = os.path.join(real_data, 'mnist', name)
        if os.path.isfile(source + '.gz'):
            with gzip.open(source + '.gz', 'rb') as src:
                (folder / name).write_bytes(src.read())
        else:                                                  # the real data are kept gunzipped already
            shutil.copyfile(source, folder / name)
    ds = MNIST(root=tmp_path, train=False, download=False)
    reference = MNIST(train=False, download=False)
    assert ds.root == str(folder)
    np.testing.assert_array_equal(ds.data, reference.data)
    np.testing.assert_array_equal(ds.targets, reference.targets)
    labels = bytearray((folder / 't10k-labels-idx1-ubyte').read_bytes())
    labels[100] = (labels[100] + 1) % 10                       # one label changed
    (folder / 't10k-labels-idx1-ubyte').write_bytes(bytes(labels))
    with pytest.raises(ChecksumError, match='t10k-labels-idx1-ubyte is corrupt .* 27ae3e4e09519cfbb04c329615203637'):
        MNIST(root=tmp_path, train=False, download=False)
