"""The classifier reads the last real step: padding never changes its output, in any direction."""

from __future__ import annotations

import pytest
import torch

from models.text.rnn import RNNClassifier, RNNClassifierConfig, reverse_within_length


def tiny(**kw) -> RNNClassifier:
    torch.manual_seed(0)
    cfg = RNNClassifierConfig(vocab_size=20, num_classes=3, embed_dim=8, hidden_size=6, dropout=0.0, **kw)
    return RNNClassifier(cfg).eval()


def batch():
    tokens = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0], [9, 8, 0, 0, 0]])
    return tokens, torch.tensor([5, 3, 2])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "meanmax"])
def test_extra_padding_does_not_change_logits(bidirectional, num_layers, cell, pooling):
    model = tiny(bidirectional=bidirectional, num_layers=num_layers, cell=cell, pooling=pooling)
    tokens, lengths = batch()
    logits, _ = model(tokens, lengths)
    more_padding = torch.cat([tokens, torch.zeros(3, 6, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(more_padding, lengths)[0], logits)
    one_by_one = torch.cat(
        [model(tokens[i : i + 1, :n], lengths[i : i + 1])[0] for i, n in enumerate(lengths)]
    )
    torch.testing.assert_close(one_by_one, logits)


@pytest.mark.parametrize("pooling", ["last", "meanmax"])
def test_padding_would_change_the_answer_if_it_were_read(pooling):
    """The naive reading (last column, or a backward pass starting in the padding) differs."""
    model = tiny(bidirectional=True, pooling=pooling)
    tokens, lengths = batch()
    logits, _ = model(tokens, lengths)
    naive, _ = model(tokens, torch.full_like(lengths, tokens.size(1)))  # treat padding as real
    assert not torch.allclose(naive[1:], logits[1:])
    torch.testing.assert_close(naive[0], logits[0])  # the full-length row is the same


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("pooling", ["last", "meanmax"])
def test_unpacked_encoder_matches_packed_cudnn_style_gru(num_layers, pooling):
    model = tiny(bidirectional=True, num_layers=num_layers, pooling=pooling)
    packed = RNNClassifier(RNNClassifierConfig(**{**model.config.to_dict(), "pack": True})).eval()
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("layers."):  # layers.<i>.<dir>.weight_ih_l0 -> rnn.weight_ih_l<i>[_reverse]
            _, layer, direction, name = key.split(".", 3)
            suffix = "_reverse" if direction == "1" else ""
            state[f"rnn.{name.replace('_l0', f'_l{layer}')}{suffix}"] = value
        else:
            state[key] = value
    packed.load_state_dict(state)
    tokens, lengths = batch()
    torch.testing.assert_close(packed(tokens, lengths)[0], model(tokens, lengths)[0])


def test_loss_is_returned_with_targets_and_reverse_helper():
    model = tiny()
    tokens, lengths = batch()
    logits, loss = model(tokens, lengths, torch.tensor([0, 1, 2]))
    assert logits.shape == (3, 3) and loss.ndim == 0
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[:, :, 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]


@pytest.mark.parametrize(
    ("field", "value"), [("hidden_size", 0), ("dropout", 1.0), ("cell", "rnn"), ("vocab_size", 0)]
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    kwargs = {"vocab_size": 10, "num_classes": 2, field: value}
    with pytest.raises(ValueError, match=field):
        RNNClassifierConfig(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_forward_on_cuda_matches_cpu():
    model = tiny(bidirectional=True)
    tokens, lengths = batch()
    expected, _ = model(tokens, lengths)
    got, _ = model.cuda()(tokens.cuda(), lengths.cuda())
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-4)


def test_members_predict_the_mean_of_their_probabilities_and_each_learns_on_its_own_loss():
    model = tiny(members=3)
    tokens, lengths = batch()
    targets = torch.tensor([0, 1, 2])
    logits, loss = model(tokens, lengths, targets)
    alone = [member(tokens, lengths, targets) for member in model.ensemble]
    mean = torch.stack([torch.softmax(out, dim=-1) for out, _ in alone]).mean(0)
    torch.testing.assert_close(torch.softmax(logits, dim=-1), mean)
    # in eval, the loss is the ensemble's
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, targets))
    model.train()
    _, train_loss = model(tokens, lengths, targets)
    torch.testing.assert_close(train_loss, torch.stack([m_loss for _, m_loss in alone]).mean())
    first, second = (m.embed.weight for m in model.ensemble[:2])
    assert not torch.equal(first, second)  # initialised independently
    more_padding = torch.cat([tokens, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model.eval()(more_padding, lengths)[0], logits)
