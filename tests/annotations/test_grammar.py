from __future__ import annotations

import pytest

from annotations.grammar import GrammarError, circuit_parse, circuit_read
from neurons.models import Model, Neuron


@pytest.mark.parametrize(
    ("text", "canonical", "coefficients"),
    [
        ("4c:447 = 4b:373 + 4b:237", "4c:447 = 4b:373 + 4b:237", [1.0, 1.0]),
        (
            "4c:447 = 0.8*4b:373 + 4b:237 - 4b:12",
            "4c:447 = 0.8*4b:373 + 4b:237 - 4b:12",
            [0.8, 1.0, -1.0],
        ),
        ("mixed4c:447=mixed4b:373+inceptionv1/4b:237", "4c:447 = 4b:373 + 4b:237", [1.0, 1.0]),
        (
            "inceptionv1/4c:447 = -2 * 3b:10 + .5*mixed4a_0:0",
            "4c:447 = -2*3b:10 + 0.5*4a:0",
            [-2.0, 0.5],
        ),
        ("  4c:447\t=\tconv2d0:63  ", "4c:447 = conv2d0:63", [1.0]),
    ],
)
def test_it_reads_circuits_in_every_reference_form(
    target: Neuron, text: str, canonical: str, coefficients: list[float]
) -> None:
    circuit = circuit_read(text, target=target)
    assert circuit.target == target
    assert circuit.canonical == canonical
    assert [term.coefficient for term in circuit.terms] == coefficients


def test_it_resolves_each_term_to_its_catalog_neuron(target: Neuron) -> None:
    circuit = circuit_read("4c:447 = 4b:373 - 0.25*mixed4a:7", target=target)
    assert [term.neuron.ref for term in circuit.terms] == [
        "inceptionv1/4b:373",
        "inceptionv1/4a:7",
    ]
    assert [term.column for term in circuit.terms] == [10, 24]


def test_without_a_page_neuron_the_model_comes_from_the_expression_or_the_caller(
    inceptionv1: Model,
) -> None:
    assert circuit_read("inceptionv1/4c:1 = 4b:2").target.ref == "inceptionv1/4c:1"
    assert circuit_read("4c:1 = 4b:2", model="inceptionv1").terms[0].neuron.ref == (
        "inceptionv1/4b:2"
    )


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "the expression is empty"),
        ("   ", 1, "the expression is empty"),
        ("= 4b:373", 1, "expected the target neuron first"),
        ("4c:447 4b:373", 8, "expected '=' after the target, found '4b:373'"),
        ("4c:447 =", 9, "expected at least one component after '='"),
        ("4c:447 = 4b:373 4b:237", 17, "expected '+' or '-' between terms"),
        ("4c:447 = 4b:373 +", 18, "expected a neuron reference or a coefficient, found the end"),
        ("4c:447 = 0.8 4b:373", 14, "expected '*' after the coefficient 0.8"),
        ("4c:447 = 0.8* + 4b:1", 15, "expected a neuron reference after '0.8*'"),
        ("4c:447 = 4b:373 & 4b:1", 17, "unexpected character '&'"),
        ("4c:447 = 4b:373 = 4b:1", 17, "only one '=' is allowed"),
        ("4c:447 = 0*4b:373", 10, "a coefficient of 0 adds nothing"),
        ("4c:447 = 4b:373x", 16, "unexpected character 'x'"),
        ("f12:3 = f11:-1", 13, "expected a channel index (digits 0-9) after 'f11:', found '-'"),
        ("f12:3 = f11:\u0663", 13, "after 'f11:', found '\u0663'"),
        ("f12:3 = f11:", 13, "after 'f11:', found the end"),
        ("f12:3 = f11 : 1", 12, "a neuron reference has no spaces around ':'"),
        ("f12:3 = f11:1234567890", 13, "a channel index has at most 9 digits"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, column: int, message: str) -> None:
    with pytest.raises(GrammarError) as caught:
        circuit_parse(text)
    assert caught.value.column == column
    assert message in caught.value.message
    assert str(caught.value).startswith(f"column {column}: ")


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("4c:447 = 4z:1 + 4b:2", 10, "unknown layer '4z' in inceptionv1"),
        (
            "4c:447 = 4b:373 + 4b:999",
            19,
            "index 999 is out of range for inceptionv1/mixed4b, which has 512 channels",
        ),
        ("4c:447 = 4d:1", 10, "4d:1 is in mixed4d, which is not below the target's layer mixed4c"),
        ("4c:447 = 4c:1", 10, "not below the target's layer"),
        ("4c:447 = 4b:373 + mixed4b:373", 19, "4b:373 appears twice (first at column 10)"),
        (
            "4c:447 = mobilenet_v2/features_1:0",
            10,
            "is in model 'mobilenet_v2', but this circuit is in 'inceptionv1'",
        ),
        ("mobilenet_v2/features_2:0 = 4b:1", 1, "is in model 'mobilenet_v2'"),
        ("4c:448 = 4b:1", 1, "the expression's target is 4c:448, but this claim is about 4c:447"),
        ("4c:999 = 4b:1", 1, "index 999 is out of range for inceptionv1/mixed4c"),
    ],
)
def test_catalog_errors_say_what_and_where(
    target: Neuron, text: str, column: int, message: str
) -> None:
    with pytest.raises(GrammarError) as caught:
        circuit_read(text, target=target)
    assert caught.value.column == column
    assert message in caught.value.message


def test_a_bare_target_without_a_page_or_model_names_no_model(inceptionv1: Model) -> None:
    with pytest.raises(GrammarError, match="names no model") as caught:
        circuit_read("4c:447 = 4b:1")
    assert caught.value.column == 1


def test_an_unknown_model_is_an_error_at_the_target(inceptionv1: Model) -> None:
    with pytest.raises(GrammarError, match="unknown model 'vgg99'"):
        circuit_read("vgg99/4c:447 = 4b:1")


def test_a_very_long_expression_is_refused_before_reading_it() -> None:
    with pytest.raises(GrammarError, match="longer than"):
        circuit_parse("4c:1 = " + " + ".join(["4b:1"] * 1000))


@pytest.mark.parametrize(
    ("coefficient", "column", "message"),
    [
        ("9" * 309, 10, "is not allowed"),
        ("10000000000000000", 10, "is not allowed"),
        ("10000.5", 10, "is too large"),
        ("0.0000001", 10, "at most 6 decimals"),
        ("0.000000", 10, "a coefficient of 0"),
    ],
)
def test_it_refuses_coefficients_it_could_not_write_back_with_their_column(
    target: Neuron, coefficient: str, column: int, message: str
) -> None:
    with pytest.raises(GrammarError) as caught:
        circuit_read(f"4c:447 = {coefficient}*4b:373", target=target)
    assert caught.value.column == column and message in str(caught.value)


@pytest.mark.parametrize(
    "coefficient", ["0.00005", "0.000001", "10000", "1234.567891", "0.1", "3", "00002.50"]
)
def test_what_it_stores_reads_again_to_the_same_claim(target: Neuron, coefficient: str) -> None:
    circuit = circuit_read(f"4c:447 = {coefficient}*4b:373 - 4b:12", target=target)
    again = circuit_read(circuit.canonical, target=target)
    assert again.canonical == circuit.canonical
    assert [t.coefficient for t in again.terms] == [t.coefficient for t in circuit.terms]
    assert again.terms[0].coefficient == float(coefficient)
