"""Method summarize (a seq2seq2seq auto-encoder with a discriminator of human sentences) and summary_quality."""
import json
import numpy as np
import pytest
import torch

import gankit
from gankit.data.sequences import FORTUNES_DIR, encode, lengths
from gankit.errors import ConfigError
from gankit.methods.summarize import pad_to
from gankit.nets.summarizer import EncoderDecoder
from gankit.metrics.summaries import (judge_nll, lead_summaries, random_summaries, rouge1_recall,
                                      train_judge)

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (FORTUNES_DIR / "wisdom").is_file(),
                                 reason="the English fortunes: apt-get install fortunes")]

SMALL = {"embed": 32, "hidden": 32}


def _config(out, steps=40, **method):
    return {"out": str(out), "method": {"name": "summarize", "summary_length": 6, "warmup": 0, **method},
            "data": {"name": "documents", "max_words": 30, "min_count": 10, "n_samples": 400},
            "generator": {"name": "auto", **SMALL}, "reconstructor": {"name": "auto", **SMALL},
            "discriminator": {"name": "auto", "embed": 32, "filters": 16},
            "train": {"steps": steps, "batch_size": 16, "log_every": 5, "checkpoint_every": 0, "sample_every": 0,
                      "progress": "none", "seed": 1},
            "runtime": {"threads": 1}}


def _logged(run, key):
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = _config(tmp_path_factory.mktemp("summ") / "run", steps=60)
    cfg["optim"] = {"lr_g": 3e-3, "lr_d": 1e-3}
    return gankit.train(cfg)


def test_training_lowers_the_reconstruction_nll(trained):
    nll = _logged(trained, "rec_nll")
    assert len(nll) == 12
    # the document's NLL given the summary falls well below the untrained start (log V: about 6)
    assert nll[0] > 5.0 and np.mean(nll[-3:]) < nll[0] - 1.0
    assert _logged(trained, "g_loss") and _logged(trained, "d_loss")     # adv_weight 1: D judges the summaries


def test_a_copying_decoder_mixes_its_vocabulary_with_the_source_words():
    torch.manual_seed(0)
    net = EncoderDecoder(vocab=12, length=5, embed=8, hidden=8, copy=True)
    source = torch.tensor([[3, 7, 7, 0, 0, 0], [4, 5, 6, 8, 9, 0]])
    ctx = net.read(source)
    h = torch.randn(2, 3, 8)
    p = net._log_p(h, ctx).exp()
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 3))            # a distribution at every step
    # the same by hand: the gate's mixture of the head's softmax and the attention summed per source word
    states, seen = ctx[1], ctx[2]
    score = torch.einsum("nth,nsh->nts", net.attend(h), states).masked_fill(~seen[:, None, :], float("-inf"))
    a = torch.softmax(score, -1)
    context = torch.einsum("nts,nsh->nth", a, states)
    gate = torch.sigmoid(net.gate(torch.cat([h, context], -1)))
    want = gate * torch.softmax(net.decoder.head(h), -1)
    for i in range(2):
        for j, w in enumerate(source[i].tolist()):
            if seen[i, j]:
                want[i, :, w] += (1 - gate[i, :, 0]) * a[i, :, j]
    torch.testing.assert_close(p, want)
    # the padding after a source's end (its first 0 is read: copying it ends the summary) is never attended
    assert bool((a[0, :, 4:] == 0).all()) and bool((a[0, :, 3] > 0).all())
    with torch.no_grad():                                                # the gate shut: only source words
        net.gate.bias.fill_(-30.0)
    only = net.greedy(source)
    assert all(set(row) <= set(src) for row, src in zip(only.tolist(), source.tolist()))


def test_sampling_summarises_a_given_document(trained):
    vocab = trained.info.fields["x"].classes
    text = ("the world is a comedy to those that think , a tragedy to those that feel , and a long story to "
            "those who read it .")
    out = trained.generate(3, seed=0, given={"document": text})
    assert torch.equal(out["document"][0], torch.tensor(encode(text, vocab, 30)))
    n = lengths(out["x"])
    assert int(n.max()) <= 6 and out["x"].shape == (3, 30) and bool((out["x"][:, 6:] == 0).all())
    assert torch.equal(out["x"][0], out["x"][1])                         # greedy: the same summary each time
    assert out["reconstruction"].shape == (3, 30)
    # no document given: summaries of training documents from the pool kept in the checkpoint
    again = gankit.load_run(trained.path).generate(5, seed=3)
    pool = {tuple(r) for r in trained.method.pool.tolist()}
    assert len(trained.method.pool) > 0 and all(tuple(r) in pool for r in again["document"].tolist())
    with pytest.raises(ConfigError, match="at most 30"):
        trained.generate(1, given={"document": " ".join(["word"] * 31)})
    with pytest.raises(ConfigError, match="cannot be given 'prefix'"):
        trained.generate(1, given={"prefix": "the"})


def test_gankit_sample_writes_the_summary_of_a_text(trained, tmp_path):
    from gankit.cli import main

    out = tmp_path / "summary.txt"
    assert main(["sample", str(trained.path), "--text", "a man who reads many books will learn to think , and "
                 "a man who thinks will learn to read the world .", "--n", "1", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and 1 <= len(lines[0].split()) <= 6


def test_reinforce_trains_the_policy_with_a_baseline(tmp_path):
    run = gankit.train(_config(tmp_path / "rl", steps=10, estimator="reinforce", warmup=4))
    reward = _logged(run, "reward")
    assert len(reward) == 2 and all(r < 0 for r in reward)              # a log-likelihood per token
    assert _logged(run, "d_score") and _logged(run, "pg_loss") and _logged(run, "baseline")
    assert run.method.b_updates == 10 and float(run.method.b) < 0
    loaded = gankit.load_run(run.path)                                   # the baseline is kept in the checkpoint
    assert loaded.method.b_updates == 10 and torch.equal(loaded.method.b, run.method.b)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="summary_length"):
        gankit.train(_config(tmp_path / "a", summary_length=0))
    with pytest.raises(ConfigError, match="shorter than the documents"):
        gankit.train(_config(tmp_path / "b", summary_length=30))
    with pytest.raises(ConfigError, match="adv_weight"):
        gankit.train(_config(tmp_path / "c", adv_weight=-1))
    with pytest.raises(ConfigError, match="estimator"):
        gankit.train(_config(tmp_path / "d", estimator="argmax"))
    cfg = _config(tmp_path / "e")
    cfg["data"] = {"name": "quotes", "n_samples": 200}                   # documents without short sentences
    with pytest.raises(ConfigError, match="sentence"):
        gankit.train(cfg)
    assert not (tmp_path / "e").exists()


def test_pad_to_pads_tokens_with_zero_and_distributions_with_its_one_hot():
    t = torch.tensor([[3, 4, 0]])
    assert torch.equal(pad_to(t, 5), torch.tensor([[3, 4, 0, 0, 0]])) and torch.equal(pad_to(t, 2), t[:, :2])
    p = torch.softmax(torch.randn(2, 3, 6), -1)
    q = pad_to(p, 5)
    assert torch.equal(q[:, :3], p) and torch.equal(q[:, 3:].argmax(-1), torch.zeros(2, 2, dtype=torch.long))
    assert torch.equal(q[:, 3:].sum(-1), torch.ones(2, 2))


def test_rouge1_recall_counts_clipped_unigram_matches():
    docs = torch.tensor([[5, 6, 5, 7, 8, 0], [9, 9, 9, 9, 0, 0]])
    summ = torch.tensor([[5, 5, 5, 9, 0, 0], [9, 3, 0, 0, 0, 0]])
    # doc 1: 5 twice (summary has it three times: clipped at 2), nothing else: 2 / 5; doc 2: one 9 of four
    np.testing.assert_allclose(rouge1_recall(summ, docs), [2 / 5, 1 / 4])
    assert rouge1_recall(docs, docs).tolist() == [1.0, 1.0]


def test_the_baselines_take_the_documents_words_at_the_summaries_lengths():
    docs = torch.tensor([[5, 6, 7, 8, 9, 0], [1, 2, 3, 0, 0, 0]])
    n = torch.tensor([2, 4])
    lead = lead_summaries(docs, n, 4)
    assert lead.tolist() == [[5, 6, 0, 0], [1, 2, 3, 0]]                  # at most the document's own length
    rand = random_summaries(docs, n, 4, seed=0)
    assert lengths(rand).tolist() == [2, 3] and rand[1].tolist() == [1, 2, 3, 0]
    picked = [t for t in rand[0].tolist() if t]
    assert set(picked) <= {5, 6, 7, 8, 9} and picked == sorted(picked)    # in the document's order
    assert torch.equal(rand, random_summaries(docs, n, 4, seed=0))


def test_a_judge_reads_more_of_the_document_from_a_summary_that_carries_it():
    g = torch.Generator().manual_seed(0)
    docs = torch.randint(2, 12, (200, 8), generator=g)
    first = docs[:, :2]                                                   # the first two tokens, then random ones
    empty = torch.zeros(200, 2, dtype=torch.long)
    lead = train_judge(first, docs, 12, steps=150, batch=32, hidden=32)
    none = train_judge(empty, docs, 12, steps=150, batch=32, hidden=32)
    held = torch.randint(2, 12, (100, 8), generator=g)
    # each token uniform over 10 values: log 10 = 2.30 nats with no summary; the lead gives 2 of 9 tokens
    # (the 8 and the end) almost free, so about 7/9 of log 10
    assert judge_nll(none, torch.zeros(100, 2, dtype=torch.long), held) > 2.0
    assert judge_nll(lead, held[:, :2], held) < judge_nll(none, torch.zeros(100, 2, dtype=torch.long), held) - 0.25
