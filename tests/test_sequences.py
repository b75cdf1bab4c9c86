"""Token data sets: parsing the fortune files, splits, vocabularies, errors, and SeqGAN's oracle."""
import math

import pytest
import torch

import gankit
from gankit.data.base import Field
from gankit.data.sequences import (FORTUNES_DIR, PAD, UNK, Oracle, decode, decode_all, encode, lengths, poem_lines,
                                   quote_entries, tokenize_words)
from gankit.errors import ConfigError, DataError
from gankit.methods.base import DataInfo, contract_of
from gankit.registries import METHODS, load_all

load_all()

TANG = FORTUNES_DIR / "tang300"
needs_zh = pytest.mark.skipif(not TANG.is_file(), reason="apt-get install fortunes-zh")
needs_en = pytest.mark.skipif(not (FORTUNES_DIR / "wisdom").is_file(), reason="apt-get install fortunes")

FAKE_POEMS = (
    "\x1b[32m《静夜思》\x1b[m\n\x1b[33m作者：李白\x1b[m\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n%\n"
    "\x1b[32m题目:《早发》\x1b[m\n\x1b[33m作者:某\x1b[m\n朝辞白帝彩云间，千里江陵一日还。\n两岸猿声啼不住，轻舟已过万重山！\n"
    "长短句不合此数也好\n%\n"
)


def _data(**spec):
    return gankit.api.build_data(gankit.api.make_config({"method": {"name": "mle"}, "data": spec}))


def test_poem_lines_strip_colour_codes_titles_and_punctuation():
    lines = ["".join(s) for s in poem_lines(FAKE_POEMS)]
    assert lines == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡",
                     "朝辞白帝彩云间", "千里江陵一日还", "两岸猿声啼不住", "轻舟已过万重山"]
    assert ["".join(s) for s in poem_lines(FAKE_POEMS, [7])] == lines[4:]


@needs_zh
def test_poems_split_pad_and_vocabulary():
    train, test = _data(name="poems"), _data(name="poems", split="test")
    assert train.kind == test.kind == "tokens" and train.x.shape[1] == 7 and test.x.shape[1] == 7
    vocab = train.fields()["x"].classes
    assert vocab[:2] == (PAD, UNK) and vocab == test.fields()["x"].classes
    n = lengths(train.x)
    assert set(n.tolist()) == {5, 7}
    assert bool((train.x[n == 5][:, 5:] == 0).all()) and bool((train.x[:, :5] > 1).all())   # min_count 1: no unk
    a, b = set(decode_all(train.x, vocab)), set(decode_all(test.x, vocab))
    assert not a & b                                            # a line is in one split only
    assert 0.07 < len(b) / (len(a) + len(b)) < 0.13             # test_fraction 0.1
    assert "床前明月光" in a | b
    again = _data(name="poems", seed=1)
    assert set(decode_all(again.x, again.fields()["x"].classes)) != a     # the split follows the seed
    sevens = _data(name="poems", lengths=[7])
    assert set(lengths(sevens.x).tolist()) == {7}
    song = _data(name="poems", source="song100")
    assert len(song) > 300 and set(decode_all(song.x[:50], song.fields()["x"].classes)).isdisjoint(a)


@needs_zh
def test_held_out_characters_never_seen_in_training_are_unknown():
    train, test = _data(name="poems", min_count=3), _data(name="poems", split="test", min_count=3)
    vocab = train.fields()["x"].classes
    assert int((train.x == 1).sum()) > 0 and int((test.x == 1).sum()) > 0   # rare characters are <unk>
    assert len(vocab) < len(_data(name="poems").fields()["x"].classes)


def test_missing_package_files_name_the_apt_command(tmp_path):
    with pytest.raises(DataError, match="apt-get install -y fortunes-zh"):
        _data(name="poems", root=str(tmp_path))
    with pytest.raises(DataError, match="apt-get install -y fortunes"):
        _data(name="quotes", root=str(tmp_path))
    with pytest.raises(ConfigError, match="data.path"):
        _data(name="text")
    with pytest.raises(DataError, match="not a file"):
        _data(name="text", path=str(tmp_path / "nothing.txt"))


def test_quotes_leave_out_attributions_and_long_entries(tmp_path):
    raw = ("Do or do not.  There is no try.\n\t\t-- Yoda\n%\nA rolling stone\ngathers no moss.\n%\n"
           + "word " * 30 + "\n%\nDon't panic!\n\t-- D. Adams, \"H2G2\"\n")
    assert quote_entries(raw) == ["Do or do not. There is no try.", "A rolling stone gathers no moss.",
                                  ("word " * 30).strip(), "Don't panic!"]
    assert tokenize_words("Don't panic!") == ["don't", "panic", "!"]
    (tmp_path / "mine").write_text(raw * 3 + "%\nOne more line here.\n%\nAnd another one.\n")
    data = _data(name="quotes", root=str(tmp_path), files=["mine"], min_count=1, test_fraction=0.2)
    test = _data(name="quotes", root=str(tmp_path), files=["mine"], min_count=1, test_fraction=0.2, split="test")
    vocab = data.fields()["x"].classes
    kept = ["do or do not . there is no try .", "a rolling stone gathers no moss .", "don't panic !",
            "one more line here .", "and another one ."]                # distinct, short, no attribution
    assert len(data) + len(test) == 5 and set(decode_all(data.x, vocab)) <= set(kept)
    (held,) = decode_all(test.x, vocab)                                  # words training never saw are <unk>
    assert any(len(h.split()) == len(k.split()) and all(a in (b, UNK) for a, b in zip(h.split(), k.split()))
               for h in [held] for k in set(kept) - set(decode_all(data.x, vocab)))
    assert data.x.shape[1] == 20 and "yoda" not in vocab


@needs_en
def test_quotes_from_the_package():
    data = _data(name="quotes", max_words=12)
    assert len(data) > 1000 and data.x.shape[1] == 12
    assert not decode_all(data.x[:20], data.fields()["x"].classes)[0].startswith("--")


def test_text_file_char_and_word_levels(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("the cat sat\n\nthe dog sat\na cat ran\nthe cat ran far away today again and again\n"
                    "dogs run\n", encoding="utf-8")
    words = _data(name="text", path=str(path), max_length=5, test_fraction=0.25, seed=3)
    held = _data(name="text", path=str(path), max_length=5, test_fraction=0.25, seed=3, split="test")
    vocab = words.fields()["x"].classes
    assert len(words) == 3 and len(held) == 1 and words.x.shape[1] == 5       # the 9-word line left out
    assert set(decode_all(words.x, vocab)) | set(decode_all(held.x, vocab)) <= {
        "the cat sat", "the dog sat", "a cat ran", "dogs run"} | {decode(r, vocab) for r in held.x}
    chars = _data(name="text", path=str(path), level="char", max_length=12)
    cv = chars.fields()["x"].classes
    assert all(len(w) == 1 for w in cv[2:]) and decode(chars.x[0], cv).replace(" ", "") == decode(chars.x[0], cv)
    assert decode(encode("cat", cv, 12), cv) == "cat"
    assert encode("the zebra", vocab, 5)[:3] == [vocab.index("the"), 1, 0]     # an unknown word is <unk>
    with pytest.raises(ConfigError, match="at most 5"):
        encode("the cat sat the cat sat", vocab, 5)


def test_vocabulary_travels_in_the_data_info():
    data = _data(name="oracle", n_samples=50, n_test=10, vocab=12, length=6)
    info = DataInfo.of(data)
    assert info.kind == "tokens" and info.shape == (6,)
    assert info.fields["x"] == Field("tokens", (6,), tuple([PAD] + [f"t{j}" for j in range(12)]))
    assert DataInfo.from_dict(info.to_dict()) == info


def test_lengths_end_at_the_first_padding_token():
    x = torch.tensor([[3, 4, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]])
    assert lengths(x).tolist() == [2, 4, 0]


# ------------------------------------------------------------------ the oracle

def test_oracle_sizes_determinism_and_token_range():
    a = _data(name="oracle", n_samples=200, n_test=50, vocab=40, length=9)
    b = _data(name="oracle", n_samples=200, n_test=50, vocab=40, length=9)
    t = _data(name="oracle", n_samples=200, n_test=50, vocab=40, length=9, split="test")
    other = _data(name="oracle", n_samples=200, n_test=50, vocab=40, length=9, oracle_seed=1)
    assert a.x.shape == (200, 9) and t.x.shape == (50, 9)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x[:50], t.x) and not torch.equal(a.x, other.x)
    assert int(a.x.min()) >= 1 and int(a.x.max()) <= 40 and len(a.fields()["x"].classes) == 41
    with pytest.raises(ConfigError, match="data.vocab must be positive"):
        _data(name="oracle", vocab=0)


def _lstm_log_prob(oracle: Oracle, seq):
    """log p(seq) of oracle tokens, written out from the LSTM's equations in float64."""
    p = {k: v.double() for k, v in oracle.state_dict().items()}
    H = oracle.cell.hidden_size
    h, c = torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64)
    prev, total = oracle.vocab, 0.0
    for tok in seq:
        gates = p["cell.weight_ih"] @ p["embed.weight"][prev] + p["cell.bias_ih"] + p["cell.weight_hh"] @ h \
            + p["cell.bias_hh"]
        i, f, g, o = gates.split(H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        logits = p["out.weight"] @ h + p["out.bias"]
        total += float(logits[tok] - torch.logsumexp(logits, 0))
        prev = tok
    return total


def test_oracle_log_prob_and_its_draws_follow_the_lstm():
    data = _data(name="oracle", n_samples=3000, n_test=10, vocab=8, length=5)
    from gankit.data.sequences import oracle_model

    model = oracle_model(8, 32, 32, 0)
    for name, param in model.named_parameters():              # N(0, 1), not PyTorch's small init
        assert param.std() > 0.5 if name != "cell.bias_hh" else not param.any()   # one bias per gate
    x = data.x[:5]
    want = torch.tensor([_lstm_log_prob(model, (row - 1).tolist()) for row in x], dtype=torch.float64)
    torch.testing.assert_close(data.log_prob(x), want, rtol=1e-5, atol=1e-4)
    # the first token's frequencies in 3,000 draws against the oracle's first-step distribution
    first = torch.tensor([math.exp(_lstm_log_prob(model, [j])) for j in range(8)])
    freq = torch.bincount(data.x[:, 0] - 1, minlength=8).double() / len(data)
    assert float((freq - first).abs().max()) < 4 * math.sqrt(0.25 / len(data))
    # a shorter sequence counts only its tokens
    short = x.clone()
    short[:, 3:] = 0
    want_short = torch.tensor([_lstm_log_prob(model, (row[:3] - 1).tolist()) for row in x], dtype=torch.float64)
    torch.testing.assert_close(data.log_prob(short), want_short, rtol=1e-5, atol=1e-4)


def test_picture_methods_refuse_token_data(tmp_path):
    for name in METHODS.names():
        contract = contract_of(name)
        if "tokens" in contract.data_kinds or contract.sources:
            continue
        cfg = {"method": {"name": name}, "data": {"name": "oracle", "n_samples": 40, "n_test": 10, "vocab": 10,
                                                  "length": 4},
               "train": {"steps": 1, "progress": "none"}, "out": str(tmp_path / name)}
        with pytest.raises(ConfigError, match=f"method {name} .*token sequences.*--method mle, gumbel"):
            gankit.train(cfg)
        assert not (tmp_path / name).exists()
    with pytest.raises(ConfigError, match="method mle works on tokens data.*poems, quotes, text or oracle"):
        gankit.train({"method": {"name": "mle"}, "data": {"name": "ring8", "n_samples": 100},
                      "train": {"steps": 1, "progress": "none"}, "out": str(tmp_path / "mle")})
