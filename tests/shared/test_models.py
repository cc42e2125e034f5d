"""Every variant × 1-D/2-D/3-D: shapes, finite gradients, save/load round trip, contracts, config fields."""
import hashlib
import json
import subprocess
import sys

import pydantic
import pytest
import torch

from conftest import write_sealed_config
from latente.shared.errors import UserError
from latente.shared.models import MODEL_NAMES, AutoencoderConfig, CorruptionConfig, SparsityConfig, build_model, load_model, save_model

SIZES = {1: (50,), 2: (18, 14), 3: (10, 9, 7)}


def config(name: str, dims: int, **extra) -> AutoencoderConfig:
    architecture = {"channels": (4, 8), "strides": (2, 2), "latent_channels": 3} if name.startswith("conv") else {"hidden": (16,), "latent_dim": 5}
    return AutoencoderConfig(name=name, spatial_dims=dims, in_channels=2, input_size=SIZES[dims], **architecture, **extra)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_gradients_and_round_trip(name, dims, tmp_path):
    torch.manual_seed(0)
    model = build_model(config(name, dims))
    x = torch.randn(3, 2, *SIZES[dims])
    model.train()
    out = model(x)
    assert out.recon.shape == x.shape  # odd sizes are padded and cropped back
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert all(term.shape == (3,) for term in out.terms.values())
    expected_terms = {"ae": {"recon"}, "dae": {"recon"}, "sae": {"recon", "sparsity"}, "vae": {"recon", "kl"}}
    assert set(out.terms) == expected_terms[name.split("_")[1]]
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    if name.startswith("dense"):
        assert out.z.shape == (3, 5)
    else:
        assert out.z.shape == (3, 3, *[-(-s // 4) for s in SIZES[dims]])

    model.eval()
    save_model(model, tmp_path / "m", domain="test", preprocessing={"scale": 2.0}, data={"n": 3})
    loaded = load_model(tmp_path / "m", domain="test")
    assert loaded.preprocessing == {"scale": 2.0}
    with torch.no_grad():
        a, b = model(x), loaded.model(x)
    assert torch.equal(a.recon, b.recon) and torch.equal(a.z, b.z)


def test_vae_uses_mean_at_eval_and_samples_in_training():
    torch.manual_seed(0)
    model = build_model(config("conv_vae", 1))
    x = torch.randn(2, 2, 50)
    model.eval()
    assert torch.equal(model(x).z, model(x).z)
    assert not torch.equal(model(x, sample=True).z, model(x, sample=True).z)
    model.train()
    assert not torch.equal(model(x).z, model(x).z)


def test_vae_kl_matches_closed_form():
    model = build_model(config("dense_vae", 1))
    h = torch.tensor([[0.5, -1.0, 0.0, 2.0, 0.3, 0.1, 0.0, 0.0, -0.5, 0.2]])  # mu (5) | logvar (5)
    _, terms = model.bottleneck(h, sample=False)
    mu, logvar = h[0, :5], h[0, 5:]
    expected = 0.5 * sum(float(m * m + torch.exp(lv) - 1 - lv) for m, lv in zip(mu, logvar))
    assert terms["kl"].item() == pytest.approx(expected, rel=1e-6)


def test_sparse_l1_term_is_sum_of_absolute_code():
    model = build_model(config("conv_sae", 1, sparsity={"kind": "l1", "weight": 0.5}))
    z = torch.tensor([[[1.0, -2.0], [0.5, 0.0]]])
    assert model.penalty(z)["sparsity"].item() == pytest.approx(3.5)
    assert model.weight("sparsity") == 0.5


def test_sparse_kl_is_zero_at_target_rate():
    model = build_model(config("dense_sae", 1, sparsity={"kind": "kl", "target": 0.5}))
    assert model.penalty(torch.zeros(4, 5))["sparsity"].abs().max().item() < 1e-6


def test_denoising_corrupts_only_in_training():
    model = build_model(config("conv_dae", 1, corruption={"kind": "masking", "level": (0.5, 0.5)}))
    x = torch.ones(2, 2, 50)
    model.train()
    assert (model.corrupt_input(x) == 0).float().mean().item() == pytest.approx(0.5, abs=0.1)
    model.eval()
    torch.manual_seed(1)
    a = model(x).recon
    torch.manual_seed(2)
    assert torch.equal(a, model(x).recon)


def test_residual_model_predicts_noise():
    cfg = config("conv_ae", 2, residual=True)
    model = build_model(cfg).eval()
    for p in model.decoder.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 2, *SIZES[2])
    assert torch.equal(model(x).recon, x)  # zero predicted noise → the input comes back


def test_context_channels_frame_the_reconstructed_centre():
    cfg = AutoencoderConfig(name="conv_dae", spatial_dims=2, in_channels=5, out_channels=1, channels=(4,), strides=(2,),
                            latent_channels=3, residual=True, corruption={"kind": "gaussian", "level": [0.1, 0.1]})
    model = build_model(cfg).eval()
    for p in model.decoder.parameters():
        torch.nn.init.zeros_(p)
    x = torch.arange(5.0).reshape(1, 5, 1, 1).expand(2, 5, 6, 4).contiguous()  # channel c holds the value c
    out = model(x)
    assert out.recon.shape == (2, 1, 6, 4) and torch.equal(out.recon, x[:, 2:3])  # the centre channel, not the first
    assert out.loss.item() == 0.0  # the default target is the centre channel too
    with pytest.raises(ValueError, match="split evenly"):
        AutoencoderConfig(name="conv_ae", in_channels=4, out_channels=1)


def test_categorical_reconstruction_term_is_cross_entropy():
    model = build_model(AutoencoderConfig(name="dense_ae", in_channels=3, input_size=(2,), latent_dim=2, hidden=(4,), recon_loss="categorical"))
    logits = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    expected = -torch.log_softmax(logits, 1)[0, 0, 0] - torch.log_softmax(logits, 1)[0, 2, 1]
    assert model.reconstruction_term(logits, target).item() == pytest.approx(expected.item())


def test_one_dimensional_vae_with_flat_code():
    # MONAI's VarAutoEncoder fails on 1-D input (MONAI issue 5225); ours must not.
    model = build_model(AutoencoderConfig(name="conv_vae", spatial_dims=1, input_size=(64,), channels=(4, 8), strides=(2, 2), latent_dim=6))
    out = model(torch.randn(4, 1, 64))
    assert out.z.shape == (4, 6) and out.recon.shape == (4, 1, 64)


def test_config_rejects_inconsistent_settings():
    with pytest.raises(ValueError, match="dense models need latent_dim"):
        AutoencoderConfig(name="dense_ae", spatial_dims=1)
    with pytest.raises(ValueError, match="channels and strides"):
        AutoencoderConfig(name="conv_ae", channels=(4, 8), strides=(2,))
    with pytest.raises(ValueError):
        AutoencoderConfig(name="conv_xae")


def test_load_model_errors(tmp_path):
    model = build_model(config("conv_ae", 1))
    folder = save_model(model, tmp_path / "m", domain="ecg", preprocessing={}, data={})
    with pytest.raises(UserError, match="is a 'ecg' model, not a 'mri' model"):
        load_model(folder, domain="mri")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(UserError, match="checksum mismatch"):
        load_model(folder)
    with pytest.raises(UserError, match="model folder not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_model(tmp_path / "bad")


def test_load_model_names_the_config_key_it_rejects(tmp_path):
    folder = save_model(build_model(config("conv_ae", 1)), tmp_path / "m", domain="ecg", preprocessing={}, data={})
    meta = json.loads((folder / "config.json").read_text())
    write_sealed_config(folder, {**meta, "preprocesing": {}})
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert err.value.where == f"{folder / 'config.json'}: preprocesing" and err.value.problem == "unknown key (misspelt?)"
    write_sealed_config(folder, {**meta, "model": {**meta["model"], "chanels": [4, 8]}})
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert err.value.where == f"{folder / 'config.json'}: model.chanels" and err.value.problem == "unknown key (misspelt?)"
    write_sealed_config(folder, {**meta, "model": {**meta["model"], "kernel_size": "wide"}})
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert err.value.where == f"{folder / 'config.json'}: model.kernel_size"


def test_config_json_is_sealed_by_its_checksum(tmp_path):
    folder = save_model(build_model(config("conv_ae", 1)), tmp_path / "m", domain="ecg", preprocessing={"gain": 2.0}, data={"rows": (0, 4)})
    text = (folder / "config.json").read_text()
    meta = json.loads(text)
    body = {k: v for k, v in meta.items() if k != "config_sha256"}
    # the digest by hand: sha256 of the config without it, keys sorted, no spaces
    assert meta["config_sha256"] == hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert meta["data"]["rows"] == [0, 4]  # sealed as it is read back: the tuple is a list
    assert load_model(folder).preprocessing == {"gain": 2.0}
    # one value edited, even to one that validates: refused, with the file named
    (folder / "config.json").write_text(text.replace('"gain": 2.0', '"gain": 3.0'))
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert err.value.where == str(folder / "config.json") and err.value.problem.startswith("checksum mismatch")
    # spacing and key order are not content: a reformatted file still loads
    (folder / "config.json").write_text(json.dumps(dict(reversed(list(meta.items())))))
    assert load_model(folder).preprocessing == {"gain": 2.0}
    (folder / "config.json").write_text(json.dumps(body))
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert err.value.where == f"{folder / 'config.json'}: config_sha256" and err.value.problem.startswith("missing")


def test_saved_folder_has_no_pickle(tmp_path):
    folder = save_model(build_model(config("dense_vae", 2)), tmp_path / "m", domain="x", preprocessing={}, data={}, extras={"mean": torch.ones(3)})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "extras.safetensors", "model.safetensors"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["model"]["name"] == "dense_vae" and meta["domain"] == "x"
    assert torch.equal(load_model(folder).extras["mean"], torch.ones(3))


# Fields that only some models use, a value other than the default for each, and the models that use
# it, read off backbones.py and autoencoders.py (conv models here have a code map: no latent_dim).
CONV = {n for n in MODEL_NAMES if n.startswith("conv")}
DENSE = {n for n in MODEL_NAMES if n.startswith("dense")}
FIELDS = {
    "channels": ((8, 8, 8), CONV),
    "strides": ((2, 1, 2), CONV),
    "kernel_size": (5, CONV),
    "num_res_units": (1, CONV),
    "latent_channels": (3, CONV),
    "norm": (None, CONV),
    "hidden": ((12,), DENSE),
    "decoder_hidden": ((6,), DENSE),
    "beta": (2.0, {"conv_vae", "dense_vae"}),
    "sparsity": (SparsityConfig(kind="l1", weight=0.5), {"conv_sae", "dense_sae"}),
    "corruption": (CorruptionConfig(kind="masking", level=(0.5, 0.5)), {"conv_dae", "dense_dae"}),
}
X = torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(0))


def base_config(name: str, **extra) -> AutoencoderConfig:
    flat = {"input_size": (16,), "latent_dim": 4} if name.startswith("dense") else {}
    return AutoencoderConfig(name=name, in_channels=2, **flat, **extra)


def behaviour(config: AutoencoderConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Initial weights and one training-mode loss, with the random draws seeded."""
    torch.manual_seed(0)
    model = build_model(config).train()
    torch.manual_seed(1)
    return model.state_dict(), model(X).loss


def same_behaviour(a: AutoencoderConfig, b: AutoencoderConfig) -> bool:
    (wa, la), (wb, lb) = behaviour(a), behaviour(b)
    return wa.keys() == wb.keys() and all(wa[k].shape == wb[k].shape and torch.equal(wa[k], wb[k]) for k in wa) and torch.equal(la, lb)


def assert_rejected(values: dict, field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        AutoencoderConfig.model_validate(values)
    error = caught.value.errors()[0]
    assert error["type"] == "unused_field" and "\n" not in error["msg"] and error["msg"].startswith(f"{field} is not used by this")


def as_input(value):
    return value.model_dump() if isinstance(value, pydantic.BaseModel) else value


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_field_is_accepted_where_it_changes_the_model_and_rejected_where_it_is_ignored(name, field):
    value, users = FIELDS[field]
    base = base_config(name)
    ignored = same_behaviour(base, base.model_copy(update={field: value}))  # model_copy skips validation
    values = {**base.model_dump(exclude_unset=True), field: as_input(value)}
    if name in users:
        assert getattr(AutoencoderConfig.model_validate(values), field) == value and not ignored
    else:
        assert ignored
        assert_rejected(values, field)


def test_a_flat_code_makes_latent_channels_unused():
    base = base_config("conv_ae", input_size=(16,), latent_dim=4)
    assert same_behaviour(base, base.model_copy(update={"latent_channels": 3}))
    assert_rejected({**base.model_dump(exclude_unset=True), "latent_channels": 3}, "latent_channels")


def test_sparsity_target_is_only_for_the_kl_penalty():
    with pytest.raises(pydantic.ValidationError, match="target is only used by kind 'kl'"):
        AutoencoderConfig(name="conv_sae", sparsity={"kind": "l1", "target": 0.2})
    assert AutoencoderConfig(name="conv_sae", sparsity={"kind": "kl", "target": 0.2}).sparsity.target == 0.2


def test_unused_fields_left_at_their_default_are_fine_so_full_dumps_validate_again():
    assert AutoencoderConfig(name="conv_ae", beta=1.0, hidden=(256,), sparsity=None).beta == 1.0
    for name in MODEL_NAMES:
        config = base_config(name)
        assert AutoencoderConfig.model_validate(config.model_dump()) == config
        assert AutoencoderConfig.model_validate(config.model_dump(mode="json")) == config


def test_params_leave_the_input_size_of_a_flat_code_to_the_data():
    # params declare the model without the data's size; the domain's model_config hook fills it in
    for values in ({"name": "dense_vae", "latent_dim": 4}, {"name": "conv_ae", "latent_dim": 4}):
        config = AutoencoderConfig.model_validate(values)
        with pytest.raises(ValueError, match="needs input_size"):
            build_model(config)
        assert build_model(config.model_copy(update={"input_size": (16,)}))(torch.randn(2, 1, 16)).z.shape == (2, 4)


def test_the_config_imports_without_torch_or_monai(repo_root):
    code = "import latente.shared.models as m; m.AutoencoderConfig; import sys; print('torch' in sys.modules, 'monai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo_root.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
