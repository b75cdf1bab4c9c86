"""The sequence-to-sequence parts: an encoder whose codes ignore padding and read distributions,
and a decoder conditioned on a code that learns to copy."""
import pytest
import torch
import torch.nn.functional as F

from gankit.errors import ConfigError
from gankit.nets.seq2seq import ConditionalLSTM, SequenceEncoder, sequence_lengths

pytestmark = pytest.mark.usefixtures("one_thread")


def _tokens(n, length, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, vocab, (n, length), generator=g)
    ends = torch.randint(2, length, (n,), generator=g)
    x[torch.arange(length).unsqueeze(0) >= ends.unsqueeze(1)] = 0
    return x


def test_lengths_count_the_end_token():
    x = torch.tensor([[3, 4, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]])
    assert sequence_lengths(x).tolist() == [3, 4, 1]


def test_code_ignores_what_follows_the_end():
    torch.manual_seed(0)
    enc = SequenceEncoder(12, embed=8, hidden=6).eval()
    x = _tokens(5, 9, 12)
    garbage = x.clone()
    after = torch.cumsum((x == 0).long(), 1) > 1          # positions after the first 0
    garbage[after] = 7
    with torch.no_grad():
        s1, c1 = enc(x, sequence_lengths(x))
        s2, c2 = enc(garbage, sequence_lengths(x))
    assert torch.allclose(c1, c2, atol=1e-6)
    assert torch.allclose(s1, s2, atol=1e-6)
    assert float(s1[after].abs().max()) == 0.0


def test_code_of_one_hot_distributions_equals_code_of_tokens():
    torch.manual_seed(1)
    enc = SequenceEncoder(10, embed=8, hidden=5).eval()
    x = _tokens(4, 7, 10, seed=3)
    _, c_tok = enc(x)
    _, c_soft = enc(F.one_hot(x, 10).float())
    assert torch.allclose(c_tok, c_soft, atol=1e-6)
    soft = F.one_hot(x, 10).float().requires_grad_(True)
    enc(soft)[1].sum().backward()
    assert soft.grad is not None and float(soft.grad.abs().sum()) > 0


def test_bad_shapes_are_refused():
    enc = SequenceEncoder(10, embed=4, hidden=3)
    with pytest.raises(ConfigError, match="distributions over 10"):
        enc(torch.rand(2, 5, 9))
    dec = ConditionalLSTM(10, 5, code_dim=6, embed=4, hidden=3)
    with pytest.raises(ConfigError, match=r"codes \(N, 6\)"):
        dec.initial_state(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="hidden must be positive"):
        SequenceEncoder(10, hidden=0)


def test_decoder_state_changes_draws_and_relaxed_hidden_matches_teacher_forcing():
    torch.manual_seed(2)
    dec = ConditionalLSTM(8, 6, code_dim=4, embed=5, hidden=7).eval()
    code = torch.randn(3, 4)
    state = dec.initial_state(code)
    z = torch.randn(3, 6)
    a = dec.complete(None, None, z, state=state)
    assert torch.equal(a, dec.complete(None, None, z, state=state))
    b = dec.complete(None, None, z, state=dec.initial_state(code + 3.0))
    assert not torch.equal(a, b)
    # with hard straight-through draws the decoder reads its own tokens: its hidden states are the
    # teacher-forced ones of those tokens
    soft, tok, h = dec.relaxed(torch.zeros(3, 6, 8), 1.0, hard=True, state=state, hidden=True)
    assert soft.shape == (3, 6, 8) and h.shape == (3, 6, 7)
    alive = (torch.cumsum((tok == 0).long(), 1) - (tok == 0).long()) == 0
    ht = dec.hidden(tok, state)
    assert torch.allclose(h[alive], ht[alive], atol=1e-5)


def test_an_encoder_decoder_learns_to_copy():
    torch.manual_seed(0)
    vocab, length = 9, 6
    enc = SequenceEncoder(vocab, embed=16, hidden=32)
    dec = ConditionalLSTM(vocab, length, enc.code_dim, embed=16, hidden=64)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-2)
    test = _tokens(200, length, vocab, seed=99)

    def nll(x):
        lp, n = dec.log_prob(x, state=dec.initial_state(enc(x)[1]))
        return -(lp.sum() / n.sum())

    with torch.no_grad():
        before = float(nll(test))
    for step in range(300):
        x = _tokens(64, length, vocab, seed=step)
        loss = nll(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(nll(test))
        state = dec.initial_state(enc(test)[1])
        guess = dec.logits(test, state).argmax(-1)
        alive = (torch.cumsum((test == 0).long(), 1) - (test == 0).long()) == 0
        accuracy = float((guess == test)[alive].float().mean())
        shuffled = dec.logits(test, dec.initial_state(enc(test.roll(1, 0))[1])).argmax(-1)
        other = float((shuffled == test)[alive].float().mean())
    assert before > 2.0 and after < 0.5 * before
    # the next token is read from the code of the sequence, not guessed from the tokens before it
    assert accuracy > 0.8 and other < accuracy - 0.3
