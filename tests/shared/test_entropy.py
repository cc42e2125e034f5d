"""The scale hyperprior's entropy model (shared/models/entropy.py) against hand-checkable values: the
integer tables, the grouped range coder, the fixed-point convolution, and table indices that are the
same on every machine (thread count, summation order) because they are computed in exact integers."""
import math

import numpy as np
import pytest
import torch

from latente.shared.models.entropy import (
    FRACTION_BITS, PROBABILITY_BITS, IntegerConv, ScaleHyperprior, decode_grouped, encode_grouped, gaussian_cdf,
    integer_frequencies, laplace_cdf, table_bits,
)
from latente.shared.models.entropy_config import HyperpriorConfig

ONE = 2**FRACTION_BITS  # 1.0 in the fixed point of the hyper-synthesis
TOTAL = 2**PROBABILITY_BITS  # what each integer table sums to
SCALES = np.array([0.11, 0.3, 1.0, 2.5, 7.0, 40.0, 256.0])


# --- integer tables --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cdf,bound", [(gaussian_cdf, 255), (laplace_cdf, 63)], ids=["gaussian", "laplace"])
def test_integer_tables_sum_exactly_and_code_every_symbol(cdf, bound):
    table = integer_frequencies(cdf, SCALES, bound)
    assert table.shape == (len(SCALES), 2 * bound + 1) and table.dtype == np.int64
    assert (table.sum(axis=1) == TOTAL).all()
    assert table.min() >= 1  # every symbol up to ±bound can be coded, however unlikely
    assert np.array_equal(table, table[:, ::-1])  # zero-mean, symmetric: P(−k) = P(k) exactly
    at_zero = table[:, bound]
    assert (np.diff(at_zero) < 0).all()  # a larger scale puts less mass on 0


def test_integer_tables_are_the_distributions_up_to_the_integer_rounding():
    """P(0) = erf(0.5/(s√2)) for a Gaussian of scale s, 1 − exp(−0.5/b) for a Laplace of scale b. Each
    frequency is floor(P·(TOTAL − n)) + 1 and symbol 0 takes the remainder (< n), so freq[0]/TOTAL is
    within (n + 1)/TOTAL of P(0), n = 2·bound + 1 symbols."""
    for cdf, bound, p0 in [(gaussian_cdf, 255, lambda s: math.erf(0.5 / (s * math.sqrt(2)))),
                           (laplace_cdf, 63, lambda b: 1 - math.exp(-0.5 / b))]:
        n = 2 * bound + 1
        table = integer_frequencies(cdf, np.array([0.5, 1.0, 3.0]), bound)
        for row, scale in zip(table, (0.5, 1.0, 3.0)):
            assert abs(row[bound] / TOTAL - p0(scale)) < (n + 1) / TOTAL
    # the narrowest Gaussian (scale 0.11) puts all but 5.5e-6 of its mass on 0: the 510 other symbols get
    # their floor of 1 each and that little mass between them; |k| ≥ 6 (mass < 1e-100) gets exactly 1
    narrow = integer_frequencies(gaussian_cdf, np.array([0.11]), 255)[0]
    assert 1 - math.erf(0.5 / (0.11 * math.sqrt(2))) < 1e-5
    assert narrow.sum() - narrow[255] <= 510 + 1e-5 * TOTAL
    assert (narrow[: 255 - 5] == 1).all() and (narrow[255 + 6 :] == 1).all()


def test_hyperprior_tables_follow_its_config():
    config = HyperpriorConfig(channels=3, hidden=4, levels=16, symbol_bound=40, side_bound=10)
    hyper = ScaleHyperprior(5, config)
    tables = hyper.tables()
    assert tables["y_frequencies"].shape == (16, 81) and tables["z_frequencies"].shape == (3, 21)
    assert tables["y_frequencies"].dtype == torch.int32 and (tables["y_frequencies"].sum(1) == TOTAL).all()
    scales = hyper.table_scales()  # log-spaced from scale_min to scale_max: one index step = one factor exp(log_step)
    assert scales[0] == pytest.approx(config.scale_min) and scales[-1] == pytest.approx(config.scale_max)
    assert np.allclose(scales[1:] / scales[:-1], math.exp(hyper.log_step))


# --- the grouped range coder -------------------------------------------------------------------------------
def random_coding_problem(seed: int):
    """A table per group (random scales), random groups, and symbols drawn from each element's own table."""
    rng = np.random.default_rng(seed)
    levels, bound = int(rng.integers(4, 33)), 31
    table = integer_frequencies(gaussian_cdf, np.exp(rng.uniform(math.log(0.11), math.log(40), levels)), bound)
    shape = (int(rng.integers(1, 7)), int(rng.integers(1, 400)))
    groups = rng.integers(0, levels, shape)
    cdf = np.cumsum(table, axis=1) / TOTAL
    draws = rng.random(shape)
    symbols = np.array([np.searchsorted(cdf[g], u, side="right") for g, u in zip(groups.ravel(), draws.ravel())]).reshape(shape) - bound
    symbols.flat[0], symbols.flat[-1] = bound, -bound  # the extremes, which the tables code at the floor frequency
    return symbols, groups, table, bound


@pytest.mark.parametrize("seed", range(6))
def test_grouped_coding_round_trips(seed):
    symbols, groups, table, bound = random_coding_problem(seed)
    data = encode_grouped(symbols, groups, table, bound)
    assert len(data) % 4 == 0  # whole 32-bit words
    decoded = decode_grouped(data, groups, table, bound)
    assert decoded.shape == symbols.shape and np.array_equal(decoded, symbols)
    # tolerance: the coder writes whole 32-bit words and flushes at most two of them (64 bits); it
    # also re-quantises each table to its own precision (a frequency-1 symbol costs it 23 bits, not
    # 24), which moves the total by a fraction of a percent
    assert abs(len(data) * 8 - table_bits(symbols, groups, table, bound)) <= 64 + 0.01 * len(data) * 8


@pytest.mark.parametrize("seed", range(3))
def test_one_wrong_table_index_loses_the_stream(seed):
    """Why the indices must be exact: decode one element under another table and the symbols differ
    (or constriction notices the damage)."""
    symbols, groups, table, bound = random_coding_problem(seed + 10)
    data = encode_grouped(symbols, groups, table, bound)
    wrong = groups.copy()
    wrong.flat[0] = (wrong.flat[0] + len(table) // 2) % len(table)
    try:
        decoded = decode_grouped(data, wrong, table, bound)
    except AssertionError:
        return
    assert not np.array_equal(decoded, symbols)


# --- fixed point -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("transposed,kernel", [(False, 3), (True, 4)], ids=["conv", "transposed"])
def test_fixed_point_conv_is_the_float_conv_up_to_its_rounding(transposed, kernel):
    """For input x (multiples of 2^-F, F = FRACTION_BITS), weights w and bias b, fixed_point computes
    floor((Σ W·X + B) / 2^F) with W = round(w·2^F), X = x·2^F, B = round(b·2^2F). With |W − w·2^F| ≤ 1/2
    and |B − b·2^2F| ≤ 1/2, its result / 2^F differs from the float conv Σ w·x + b by at most
        2^-(F+1) · Σ|x| (over the taps of that output)  +  2^-(2F+1)  +  2^-F (the floor),
    which is the tolerance below, per output element."""
    torch.manual_seed(0)
    layer = IntegerConv(5, 3, kernel, transposed).double()
    with torch.no_grad():
        layer.conv.weight.normal_(0, 1.0)
        layer.conv.bias.uniform_(-4, 4)
    x_fixed = torch.randint(-20 * ONE, 20 * ONE, (2, 5, 17)).double()  # x in [−20, 20) in units of 2^-F
    out = layer.fixed_point(x_fixed)
    assert torch.equal(out, torch.floor(out))  # integers (in units of 2^-F), exactly
    with torch.no_grad():
        reference = layer(x_fixed / ONE)
        # Σ|x| over each output's taps: the same convolution of |x| with all-ones weights
        op, stride = (torch.nn.functional.conv_transpose1d, 2) if transposed else (torch.nn.functional.conv1d, 1)
        taps = op(x_fixed.abs() / ONE, torch.ones_like(layer.conv.weight), stride=stride, padding=layer.conv.padding)
    assert out.shape == reference.shape
    tolerance = 2.0 ** -(FRACTION_BITS + 1) * taps + 2.0 ** -(2 * FRACTION_BITS + 1) + 2.0 ** -FRACTION_BITS
    assert ((out / ONE - reference).abs() <= tolerance).all()
    assert (out / ONE - reference).abs().max() > 0  # and it is not the float conv: rounding is real


# --- indices identical on every machine ---------------------------------------------------------------------
def random_hyperprior(seed: int = 0) -> ScaleHyperprior:
    """A small hyperprior with trained-looking random weights: ẑ of ±20 spreads its indices over the
    whole table (the last layer's bias centres them), a few percent clipped at each end."""
    torch.manual_seed(seed)
    hyper = ScaleHyperprior(6, HyperpriorConfig(channels=5, hidden=12))
    with torch.no_grad():
        for layer in hyper.synthesis:
            layer.conv.weight.normal_(0, 0.3)
            layer.conv.bias.uniform_(0, 4)
        hyper.synthesis[-1].conv.bias.uniform_(20, 40)
    return hyper.eval()


def random_side_symbols(seed: int = 0, length: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-20, 21, (1, 5, length), generator=generator)


def reference_indices(hyper: ScaleHyperprior, z: np.ndarray, length: int, order: str = "reversed") -> np.ndarray:
    """An independent implementation of the integer hyper-synthesis: Python ints (no rounding at all),
    explicit loops, input channels summed in `order`. Weights rounded half to even like torch.round."""
    def rounded(t: torch.Tensor, scale: int) -> list:
        return np.rint(t.detach().double().numpy() * scale).astype(np.int64).tolist()

    h = [[int(v) * ONE for v in row] for row in z]
    for number, layer in enumerate(hyper.synthesis):
        weight, bias = rounded(layer.conv.weight, ONE), rounded(layer.conv.bias, ONE * ONE)
        pad, kernel, n_in = layer.conv.padding[0], layer.conv.kernel_size[0], len(h)
        n_out = len(bias)
        size = 2 * len(h[0]) - 2 * pad + kernel - 2 if layer.transposed else len(h[0])
        channels = range(n_in - 1, -1, -1) if order == "reversed" else range(n_in)
        out = [[bias[o]] * size for o in range(n_out)]
        for o in range(n_out):
            for c in channels:
                for j in range(kernel):
                    for i in range(len(h[0])):
                        if layer.transposed:  # input step i, tap j lands on output 2i + j − pad; weight [in, out, k]
                            t, w = 2 * i + j - pad, weight[c][o][j]
                        else:  # output t reads input t + j − pad; weight [out, in, k]
                            t, w = i - j + pad, weight[o][c][j]
                        if 0 <= t < size:
                            out[o][t] += h[c][i] * w
        h = [[v // ONE for v in row] for row in out]  # floor division: the exact power-of-two rescaling
        if number < len(hyper.synthesis) - 1:
            h = [[max(v, 0) for v in row] for row in h]
    index = np.array([[(v + ONE // 2) // ONE for v in row[:length]] for row in h])  # floor(v/ONE + 1/2)
    return np.clip(index, 0, hyper.config.levels - 1)


def test_indices_match_an_independent_integer_implementation():
    hyper, z = random_hyperprior(), random_side_symbols()
    length = 4 * z.shape[-1] - 3  # a lead that did not fill its last side step: the indices are cropped
    indices = hyper.indices(z, length)[0].numpy()
    assert indices.shape == (6, length)
    assert indices.min() == 0 and indices.max() == hyper.config.levels - 1 and len(np.unique(indices)) > 50  # the check has teeth
    assert np.array_equal(reference_indices(hyper, z[0].numpy(), length, "reversed"), indices)
    assert np.array_equal(reference_indices(hyper, z[0].numpy(), length, "forward"), indices)


def test_float_arithmetic_would_depend_on_the_order_and_the_float_index_differs():
    """The contrast that makes the test above meaningful, deterministic on any IEEE machine: (1) the
    first layer summed in float32 in two channel orders (numpy, elementwise) differs in the last bits;
    the integer sums do not. (2) torch.round(index_float) — the training path — gives a different index
    from the integer path on some elements, and the reference above matches the integer path, not it."""
    hyper, z = random_hyperprior(), random_side_symbols()
    layer = hyper.synthesis[0]
    weight = layer.conv.weight.detach().numpy()  # [in, out, k], float32
    x = z[0].numpy()
    pad, kernel, length = layer.conv.padding[0], layer.conv.kernel_size[0], x.shape[1]

    def first_layer_float32(channels) -> np.ndarray:
        out = np.zeros((weight.shape[1], 2 * length), dtype=np.float32)
        for c in channels:
            for j in range(kernel):
                t = 2 * np.arange(length) + j - pad
                keep = (t >= 0) & (t < 2 * length)
                out[:, t[keep]] += np.float32(x[c, keep]) * weight[c, :, j : j + 1]
        return out

    forward, backward = first_layer_float32(range(x.shape[0])), first_layer_float32(range(x.shape[0] - 1, -1, -1))
    assert not np.array_equal(forward, backward)  # float sums depend on the order …
    assert np.allclose(forward, backward, rtol=1e-5, atol=1e-4)  # … in the last bits only
    with torch.no_grad():
        float_index = torch.round(hyper.index_float(z.float()))[0].to(torch.int64).numpy()
    integer_index = hyper.indices(z, 4 * z.shape[-1])[0].numpy()
    assert (float_index != integer_index).any()
    assert np.array_equal(reference_indices(hyper, z[0].numpy(), 4 * z.shape[-1]), integer_index)


def test_indices_do_not_depend_on_threads_or_batching():
    hyper = random_hyperprior(seed=1)
    batch = torch.cat([random_side_symbols(seed) for seed in range(3)])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_thread = hyper.indices(batch, 256)
        torch.set_num_threads(2)
        two_threads = hyper.indices(batch, 256)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one_thread, two_threads)
    for row in range(3):  # alone or in a batch (another blocking of the same sums)
        assert torch.equal(hyper.indices(batch[row : row + 1], 256)[0], one_thread[row])
    assert len(torch.unique(one_thread)) > 50


def test_rate_control_shift_is_an_index_shift():
    """Dividing every scale by q = exp(log_step·j) is exactly j steps down the log-spaced table."""
    hyper = random_hyperprior()
    scales = hyper.table_scales()
    for j in (1, 3, 10):
        assert np.allclose(scales[j:] / math.exp(hyper.log_step * j), scales[:-j], rtol=1e-12)


def test_index_clamp_passes_the_gradient_that_leads_back_into_the_table():
    """Hand-computed: the value is clamped to [0, 63]; the gradient of loss = Σ w·index reaches an
    element inside the range, and one outside it only when descent (−w) moves it back in."""
    hyper = ScaleHyperprior(2, HyperpriorConfig(channels=2, hidden=4))
    x = torch.tensor([-3.0, -3.0, 10.0, 70.0, 70.0], requires_grad=True)
    w = torch.tensor([-1.0, 1.0, 2.0, 1.0, -1.0])  # descent moves x by −w: up, down, -, down, up
    clamped = hyper.bounded_index(x)
    assert clamped.tolist() == [0.0, 0.0, 10.0, 63.0, 63.0]
    (w * clamped).sum().backward()
    assert x.grad.tolist() == [-1.0, 0.0, 2.0, 1.0, 0.0]
