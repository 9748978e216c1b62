"""GANLoss on multi-scale logits, feature_matching_loss, and TrainConfig.lambda_feat / --lambda-feat."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pix2pix_lib.cli import build_parser
from pix2pix_lib.models import MultiScaleDiscriminator, PatchDiscriminator
from pix2pix_lib.training import GANLoss, TrainConfig
from pix2pix_lib.training._losses import feature_matching_loss


# --- GANLoss on a list of scales ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
@pytest.mark.parametrize(("target_is_real", "for_discriminator"), [(True, True), (False, True), (True, False)])
def test_gan_loss_of_a_list_is_the_mean_over_scales(mode: str, target_is_real: bool, for_discriminator: bool) -> None:
    torch.manual_seed(0)
    scales = [torch.randn(2, 1, 30, 30) * 2, torch.randn(2, 1, 14, 14) * 2, torch.randn(2, 1, 6, 6) * 2]
    loss = GANLoss(mode)
    per_scale = [loss(logits, target_is_real, for_discriminator) for logits in scales]
    total = loss(scales, target_is_real, for_discriminator)
    torch.testing.assert_close(total, sum(per_scale) / 3)
    assert total.dtype == torch.float32 and total.ndim == 0
    assert torch.equal(loss(scales[:1], target_is_real, for_discriminator), per_scale[0])  # one scale: the tensor case
    assert torch.equal(loss(tuple(scales), target_is_real, for_discriminator), total)


def test_gan_loss_of_a_list_by_hand() -> None:
    """vanilla, real: mean over scales of mean softplus(-x); by hand for two tiny maps."""
    big, small = torch.tensor([[[[0.0, 2.0]]]]), torch.tensor([[[[-1.0]]]])
    softplus = lambda x: torch.log1p(torch.exp(torch.tensor(x))).item()  # noqa: E731
    expected = ((softplus(-0.0) + softplus(-2.0)) / 2 + softplus(1.0)) / 2
    assert GANLoss("vanilla")([big, small], True).item() == pytest.approx(expected, rel=1e-6)
    # lsgan, fake: ((0 + 4) / 2 + 1) / 2 = 1.5, not the pooled mean (0 + 4 + 1) / 3
    assert GANLoss("lsgan")([big, small], False).item() == pytest.approx(1.5)


def test_gan_loss_takes_a_multiscale_discriminators_output_and_gradients_reach_every_scale() -> None:
    model = MultiScaleDiscriminator(base_channels=2, n_layers=1, num_scales=2)
    loss = GANLoss("vanilla")(model(torch.randn(2, 6, 32, 32)), True)
    loss.backward()
    assert all(scale.model[0].weight.grad.abs().sum() > 0 for scale in model.discriminators)


@pytest.mark.parametrize("bad", [[], [torch.zeros(1), "x"], "logits", None])
def test_gan_loss_refuses_what_is_not_logits(bad: object) -> None:
    with pytest.raises(TypeError, match="GANLoss expects a logits tensor or a non-empty list"):
        GANLoss()(bad, True)  # type: ignore[arg-type]
    model = PatchDiscriminator(base_channels=2, n_layers=1)
    with pytest.raises(TypeError, match="features=True returns"):
        GANLoss()(model(torch.randn(1, 6, 16, 16), features=True), True)  # (logits, features) by mistake


# --- feature matching ---------------------------------------------------------------------------------------
def test_feature_matching_by_hand() -> None:
    fake = [[torch.tensor([1.0, 2.0]), torch.tensor([[0.0, 0.0, 3.0]])], [torch.tensor([5.0])]]
    real = [[torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 1.0, 1.0]])], [torch.tensor([2.0])]]
    # scale 0: layer 0 mean(|1|, |2|) = 1.5, layer 1 mean(1, 1, 2) = 4/3 -> (1.5 + 4/3) / 2 = 17/12
    # scale 1: 3 -> mean over scales (17/12 + 3) / 2 = 53/24
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(53 / 24) and loss.dtype == torch.float32 and loss.ndim == 0


def test_feature_matching_is_float32_and_zero_for_equal_features() -> None:
    features = [[torch.randn(2, 4, 8, 8, dtype=torch.bfloat16)]]
    assert feature_matching_loss(features, features).item() == 0.0
    other = [[torch.randn(2, 4, 8, 8, dtype=torch.bfloat16)]]
    loss = feature_matching_loss(features, other)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, (features[0][0].float() - other[0][0].float()).abs().mean())


def test_feature_matching_gradients_flow_to_the_fake_features_only() -> None:
    torch.manual_seed(0)
    model = MultiScaleDiscriminator(base_channels=2, n_layers=2, num_scales=2, norm="instance")
    fake_b = torch.randn(2, 3, 48, 48, requires_grad=True)
    real_b = torch.randn(2, 3, 48, 48, requires_grad=True)
    condition = torch.randn(2, 3, 48, 48)
    _, fake_features = model(condition, fake_b, features=True)
    _, real_features = model(condition, real_b, features=True)
    loss = feature_matching_loss(fake_features, real_features)
    loss.backward()
    assert fake_b.grad is not None and fake_b.grad.abs().sum() > 0
    assert real_b.grad is None  # the real side is a target
    # the value is the nested mean of per-layer L1 distances
    expected = sum(
        sum(F.l1_loss(f, r) for f, r in zip(fs, rs, strict=True)) / len(fs)
        for fs, rs in zip(fake_features, real_features, strict=True)
    ) / 2
    torch.testing.assert_close(loss, expected)


def test_feature_matching_of_one_scale_equals_the_patch_discriminator_case() -> None:
    torch.manual_seed(0)
    patch = PatchDiscriminator(base_channels=2, n_layers=2).eval()
    multi = MultiScaleDiscriminator(base_channels=2, n_layers=2, num_scales=1).eval()
    multi.discriminators[0].load_state_dict(patch.state_dict())
    a, b, c = (torch.randn(1, 3, 32, 32) for _ in range(3))
    with torch.no_grad():
        (_, fake_p), (_, real_p) = patch(a, b, features=True), patch(a, c, features=True)
        (_, fake_m), (_, real_m) = multi(a, b, features=True), multi(a, c, features=True)
    assert torch.equal(feature_matching_loss(fake_p, real_p), feature_matching_loss(fake_m, real_m))
    single_layer = feature_matching_loss([fake_p[0][:1]], [real_p[0][:1]])
    torch.testing.assert_close(single_layer, F.l1_loss(fake_p[0][0], real_p[0][0]))


@pytest.mark.parametrize(
    ("fake", "real", "message"),
    [
        ([[torch.zeros(2)]], [[torch.zeros(2)], [torch.zeros(2)]], "fake_features has 1 scale.*real_features has 2"),
        ([[torch.zeros(2), torch.zeros(2)]], [[torch.zeros(2)]], "scale 0: fake_features has 2 layer.*real_features has 1"),
        ([[torch.zeros(2)], [torch.zeros(1, 3)]], [[torch.zeros(2)], [torch.zeros(1, 4)]], r"scale 1, layer 0: .*\(1, 3\).*\(1, 4\)"),
        ([], [], "fake_features must be a non-empty list"),
        (torch.zeros(2), [[torch.zeros(2)]], "fake_features must be a non-empty list.*a tensor of shape"),
        ([torch.zeros(2)], [[torch.zeros(2)]], r"fake_features\[0\] must be a non-empty list of feature tensors"),
        ([[torch.zeros(2)]], [[]], r"real_features\[0\] must be a non-empty list"),
    ],
)
def test_feature_matching_errors_name_the_mismatch(fake: object, real: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        feature_matching_loss(fake, real)  # type: ignore[arg-type]


# --- TrainConfig.lambda_feat and --lambda-feat ------------------------------------------------------------
def test_lambda_feat_defaults_off_and_round_trips() -> None:
    assert TrainConfig().lambda_feat == 0.0 and TrainConfig.preset("paper").lambda_feat == 0.0
    config = TrainConfig(lambda_feat=10.0)
    assert TrainConfig.from_json(config.to_json()).lambda_feat == 10.0
    assert TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items() if k != "lambda_feat"}).lambda_feat == 0.0


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "10", True, None])
def test_invalid_lambda_feat_names_the_option(value: object) -> None:
    with pytest.raises(ValueError, match=r"TrainConfig\.lambda_feat=.*expected a finite number >= 0"):
        TrainConfig(lambda_feat=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["train", "cyclegan"])
def test_lambda_feat_flag_parses_into_the_train_options(command: str) -> None:
    parser = build_parser()
    args = parser.parse_args([command, "--data", "x", "--lambda-feat", "10"])
    assert args.lambda_feat == 10.0
    assert parser.parse_args([command, "--data", "x"]).lambda_feat is None  # unset: TrainConfig's (or the checkpoint's)
    from pix2pix_lib.cli.cyclegan import _OPTIONS
    from pix2pix_lib.cli.training import _TRAIN_OPTIONS

    options = _TRAIN_OPTIONS if command == "train" else _OPTIONS
    overrides = {option: getattr(args, option) for _, option, _, _ in options if getattr(args, option) is not None}
    assert TrainConfig().replace(**overrides).lambda_feat == 10.0
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--data", "x", "--lambda-feat", "ten"])


def test_train_command_with_the_multiscale_discriminator_records_lambda_feat_and_resumes(tmp_path) -> None:
    from pix2pix_lib.cli import main
    from pix2pix_lib.training import read_checkpoint

    from .helpers import COMMON, write_aligned_folder

    data, run = tmp_path / "pairs", tmp_path / "run"
    write_aligned_folder(data, count=2)
    args = ["train", "--data", str(data), *COMMON, "--out", str(run), "--no-tensorboard", "--val-every", "0"]
    assert main([*args, "--max-steps", "1", "--discriminator", "multiscale_patchgan", "--lambda-feat", "5"]) == 0
    checkpoint = read_checkpoint(run)
    assert checkpoint.config.lambda_feat == 5.0
    discriminator = MultiScaleDiscriminator.from_pretrained(str(checkpoint.directory / "discriminator"))
    assert (discriminator.num_scales, discriminator.n_layers, discriminator.base_channels) == (3, 1, 8)
    # --resume rebuilds it by its registered architecture name
    assert main(["train", "--data", str(data), *COMMON[:8], "--resume", str(run), "--max-steps", "2", "--no-progress"]) == 0
    assert read_checkpoint(run).meta["global_step"] == 2 and read_checkpoint(run).config.lambda_feat == 5.0
