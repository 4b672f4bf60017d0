"""Nothing wrong looks right: every bad suite or option ends in one clear line, before any compute.

One row per hostile input, each run through the real command line (`bench.__main__.main`, in
process). A row names the suite.yaml text (a base suite with one change), the data files it
changes, the command and options, the exit code and the words the error line must hold. Every
row checks the same promises: that exit code; exactly the expected number of error lines
(one unless the row says so), one of them holding every expected word; no traceback; nothing
written under results/; and no model loaded. Add a row for each new way to hold it wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import bench.models
import bench.runner
from bench.__main__ import main


def rows(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


SENTIMENT = rows(
    {"id": "s1", "text": "Loved it", "label": "positive", "split": "train"},
    {"id": "s2", "text": "Hated it", "label": "negative", "split": "train"},
    {"id": "s3", "text": "Great fun", "label": "positive", "split": "test"},
    {"id": "s4", "text": "Dull and slow", "label": "negative", "split": "test"},
)
CAPITALS_TRAIN = rows({"id": "c1", "question": "Capital of France?", "answers": ["Paris"], "section": "d1"},
                      {"id": "c2", "question": "Capital of Japan?", "answers": ["Tokyo"], "section": "d2"})
CAPITALS_TEST = rows({"id": "c3", "question": "Capital of Italy?", "answers": ["Rome", "Roma"], "section": "d1"},
                     {"id": "c4", "question": "Capital of Spain?", "answers": ["Madrid"], "section": "d2"})
CORPUS = rows({"id": "d1", "title": "Europe", "text": "Paris is the capital of France; Rome of Italy."},
              {"id": "d2", "title": "More", "text": "Tokyo is the capital of Japan; Madrid of Spain."})

BASE_YAML = """\
name: hostile
model: random:tiny-llama
seed: 0
tasks:
  - name: sentiment
    kind: classification
    data:
      file: data/sentiment.jsonl
    input_field: text
    target_field: label
    labels: [positive, negative]
    instruction: Is the review positive or negative?
    metrics: [accuracy]
  - name: capitals
    kind: qa
    data:
      files:
        train: data/capitals_train.jsonl
        test: data/capitals_test.jsonl
    input_field: question
    target_field: answers
    instruction: Answer with one word.
    metrics: [exact_match]
arms:
  - arm: prompt
    name: zero-shot
"""
BASE_FILES = {"data/sentiment.jsonl": SENTIMENT, "data/capitals_train.jsonl": CAPITALS_TRAIN,
              "data/capitals_test.jsonl": CAPITALS_TEST}
WITH_CORPUS = BASE_YAML + "corpus:\n  files: [corpus/docs.jsonl]\n"
CORPUS_FILES = {"corpus/docs.jsonl": CORPUS}


def edit(old: str, new: str, base: str = BASE_YAML) -> str:
    """The base suite with one change (the text to change must be there exactly once)."""
    assert base.count(old) == 1, old
    return base.replace(old, new)


def add_arm(text: str, base: str = BASE_YAML) -> str:
    """The suite with one more arm variant (`text` is its YAML, indented as a list item)."""
    return edit("arms:\n  - arm: prompt\n    name: zero-shot\n",
                "arms:\n  - arm: prompt\n    name: zero-shot\n" + text, base)


def sentiment_rows(*changes: dict) -> dict[str, str]:
    """The sentiment data with the first rows' fields changed (a key set to None is removed)."""
    records = [json.loads(line) for line in SENTIMENT.splitlines()]
    for record, change in zip(records, changes):
        record.update(change)
        for key in [k for k, v in change.items() if v is None]:
            del record[key]
    return {"data/sentiment.jsonl": rows(*records)}


@dataclass(frozen=True)
class Case:
    name: str
    words: tuple[str, ...]
    """Words the one error line must hold (for exit code 0: words of the output)."""
    yaml: str = BASE_YAML
    """suite.yaml; '@TMP@' is replaced by the test's folder (for absolute paths)."""
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    """Files of the suite folder over BASE_FILES (None removes one)."""
    outside: dict[str, str] = field(default_factory=dict)
    """Files beside, not inside, the suite folder (relative to the test's folder)."""
    links: dict[str, str] = field(default_factory=dict)
    """Symlinks in the suite folder -> their target relative to the test's folder."""
    command: str = "validate"
    args: tuple[str, ...] = ()
    """Options after the suite; '@TMP@' is replaced as in `yaml`."""
    code: int = 2
    problems: int = 1
    """Error lines expected: each problem is one line."""
    absent: tuple[str, ...] = ()
    """Words that must appear nowhere in the output (file contents that must not leak)."""
    suite_arg: str | None = None
    """What the command is given instead of the suite folder."""


def run_case(*options: str, words: tuple[str, ...], **kw) -> Case:
    """A `bench run` row: it must fail before the model loads (the loader is booby-trapped)."""
    return Case(kw.pop("name"), words, command="run", args=options, **kw)


CASES = [
    Case("control: the base suite validates", ("is valid", "2 tasks"), code=0),
    # 1. runs that report on nothing
    Case("files without a test split", ("tasks[1].data", "no 'test' split", "report on nothing"),
         yaml=edit("        test: data/capitals_test.jsonl\n", "")),
    Case("one file whose rows hold no test split", ("task sentiment", "split 'test' is empty"),
         files=sentiment_rows({}, {}, {"split": "train"}, {"split": "validation"})),
    Case("hub data without a test split", ("tasks[0].data", "no 'test' split"),
         yaml=edit("      file: data/sentiment.jsonl\n", "      hub: {path: imdb, splits: {train: train}}\n")),
    Case("limit of 0 test examples", ("tasks[0].limit.test", "greater than or equal to 1"),
         yaml=edit("    metrics: [accuracy]\n", "    metrics: [accuracy]\n    limit: {test: 0}\n")),
    Case("negative limit", ("tasks[0].limit.test", "greater than or equal to 1"),
         yaml=edit("    metrics: [accuracy]\n", "    metrics: [accuracy]\n    limit: {test: -3}\n")),
    Case("profile limit of 0", ("profiles.quick.limits.sentiment.test", "greater than or equal to 1"),
         yaml=BASE_YAML + "profiles:\n  quick:\n    limits: {sentiment: {test: 0}}\n"),
    run_case("--limit", "0", name="--limit 0", words=("--limit must be at least 1, got 0",)),
    run_case("--limit", "-2", name="negative --limit", words=("--limit must be at least 1, got -2",)),
    run_case("--batch-size", "0", name="--batch-size 0", words=("--batch-size must be at least 1, got 0",)),
    run_case("--batch-size", "-8", name="negative --batch-size", words=("--batch-size", "got -8")),
    run_case("--n-boot", "0", name="--n-boot 0", words=("--n-boot must be at least 1",)),
    # 2. duplicate YAML keys
    Case("two arms: lists", ("suite.yaml:27", "arms", "key given twice (lines 24 and 27)"),
         yaml=BASE_YAML + "arms:\n  - arm: prompt\n    name: other\n"),
    Case("a task key twice", ("tasks[0].metrics", "lines 13 and 14"),
         yaml=edit("    metrics: [accuracy]\n", "    metrics: [accuracy]\n    metrics: [macro_f1]\n")),
    Case("an arm key twice", ("arms[1].shots", "key given twice"),
         yaml=add_arm("  - arm: prompt\n    name: 1-shot\n    shots: 1\n    shots: 2\n")),
    Case("the suite name twice", ("suite.yaml:2", "name", "lines 1 and 2"), yaml="name: other\n" + BASE_YAML),
    # 3. labels and their texts
    Case("two labels written alike", ("tasks[0]", "both written 'good'", "tie"),
         yaml=edit("    labels: [positive, negative]\n",
                   "    labels: [positive, negative]\n    label_text: {positive: good, negative: good}\n")),
    Case("default texts that collide", ("both written 'very good'",),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative, very_good, very good]\n")),
    Case("label_text naming no label", ("label_text", "unknown label 'postive'", "did you mean 'positive'"),
         yaml=edit("    labels: [positive, negative]\n",
                   "    labels: [positive, negative]\n    label_text: {postive: good}\n")),
    Case("label_text written empty", ("label 'positive' is written as empty text",),
         yaml=edit("    labels: [positive, negative]\n",
                   "    labels: [positive, negative]\n    label_text: {positive: ' '}\n")),
    Case("label_text on a qa task", ("tasks[1]", "'label_text' is only for classification"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    label_text: {a: b}\n")),
    Case("an empty label", ("tasks[0]", "empty label"),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative, '']\n")),
    Case("a label written as nothing", ("tasks[0]", "label '_' is written as empty text"),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative, _]\n")),
    Case("a blank label", ("tasks[0]", "empty label"),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative, '  ']\n")),
    Case("a label twice", ("holds a label twice",),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative, positive]\n")),
    Case("labels written as numbers in YAML", ("tasks[0].labels[0]", "valid string", "got 0"), problems=2,
         yaml=edit("    labels: [positive, negative]\n", "    labels: [0, 1]\n")),
    Case("a classification task without labels", ("tasks[0]", "needs 'labels'"),
         yaml=edit("    labels: [positive, negative]\n", "")),
    Case("labels on a qa task", ("tasks[1]", "'labels' is only for classification"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    labels: [a, b]\n")),
    # 4. targets
    Case("a list target in classification", ("sentiment.jsonl:3", "label", "expected one label, got a list of 2"),
         files=sentiment_rows({}, {}, {"label": ["positive", "negative"]})),
    Case("a label that is not in labels", ("sentiment.jsonl:2", "unknown label 'negtive'", "did you mean 'negative'"),
         files=sentiment_rows({}, {"label": "negtive"})),
    Case("a boolean label", ("sentiment.jsonl:1", "expected a label, got the boolean true"),
         files=sentiment_rows({"label": True})),
    Case("an object as label", ("sentiment.jsonl:1", "got a dict"), files=sentiment_rows({"label": {"a": 1}})),
    Case("an empty list of answers", ("capitals_test.jsonl:1", "answers", "got an empty list"),
         files={"data/capitals_test.jsonl": rows({"id": "c3", "question": "Capital of Italy?", "answers": []},
                                                 {"id": "c4", "question": "Capital of Spain?", "answers": "Madrid"})}),
    Case("a fractional answer", ("capitals_test.jsonl:1", "the number 3.5"),
         files={"data/capitals_test.jsonl": rows({"id": "c3", "question": "How many?", "answers": 3.5},
                                                 {"id": "c4", "question": "Capital of Spain?", "answers": "Madrid"})}),
    Case("a whole-number answer is its digits", ("is valid",), code=0,
         files={"data/capitals_test.jsonl": rows({"id": "c3", "question": "How many?", "answers": [1999]},
                                                 {"id": "c4", "question": "Capital of Spain?", "answers": "Madrid"})}),
    Case("a missing target", ("sentiment.jsonl:4", "label", "missing; expected the field 'label'"),
         files=sentiment_rows({}, {}, {}, {"label": None})),
    Case("a null target", ("sentiment.jsonl:1", "label", "is null"),
         files={"data/sentiment.jsonl": SENTIMENT.replace('"label": "positive"', '"label": null', 1)}),
    # 5. gold documents
    Case("gold ids that name no corpus document",
         ("tasks[1].gold_doc_field", "2 gold document id(s) name no corpus document", "'d9' (example c3)"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n",
                   WITH_CORPUS),
         files=CORPUS_FILES | {"data/capitals_test.jsonl": CAPITALS_TEST.replace('"d1"', '"d9"').replace('"d2"',
                                                                                                         '"d8"')}),
    Case("more unknown gold ids than are named", ("4 gold document id(s)", "and 1 more"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n",
                   WITH_CORPUS),
         files=CORPUS_FILES | {"data/capitals_test.jsonl": CAPITALS_TEST.replace('"d', '"x'),
                               "data/capitals_train.jsonl": CAPITALS_TRAIN.replace('"d', '"x')}),
    Case("a boolean gold id", ("capitals_test.jsonl:1", "section", "got the boolean true"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n",
                   WITH_CORPUS),
         files=CORPUS_FILES | {"data/capitals_test.jsonl": CAPITALS_TEST.replace('"d1"', "true")}),
    Case("gold documents without a corpus", ("tasks[1].gold_doc_field", "no `corpus:`"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n")),
    Case("gold ids that all name corpus documents", ("is valid", "corpus: 2 documents"), code=0,
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n",
                   WITH_CORPUS), files=CORPUS_FILES),
    Case("a boolean corpus document id", ("docs.jsonl:1", "document id, got bool"), yaml=WITH_CORPUS,
         files={"corpus/docs.jsonl": CORPUS.replace('"d1"', "true")}),
    Case("gold ids of the suite corpus on a task with its own", ("tasks[1].gold_doc_field", "'d1' (example c1)",
                                                                 "expected ids of the task's own corpus"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    gold_doc_field: section\n"
                   "    corpus:\n      files: [corpus/own.jsonl]\n", WITH_CORPUS),
         files=CORPUS_FILES | {"corpus/own.jsonl": rows({"id": "e1", "title": "Asia", "text": "Tokyo."})}),
    Case("update files on a task's own corpus", ("tasks[1]", "a task's corpus takes no 'update' files"),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    corpus:\n"
                   "      files: [corpus/docs.jsonl]\n      update: [corpus/more.jsonl]\n"), files=CORPUS_FILES),
    # an input of 6,000 tokens against the tiny Llama's 2,048 positions is valid data: prediction
    # shortens it in its middle and says so (tests/test_context_limit.py runs it)
    Case("an input longer than the model's context", ("is valid",), code=0,
         files=sentiment_rows({}, {}, {"text": "Great fun " + "and more " * 666 + "to the end"})),
    # 6. numbers in data
    Case("CSV 0/1 labels when the labels are '0' and '1'", ("is valid",), code=0,
         yaml=edit("      file: data/sentiment.jsonl\n", "      file: data/sentiment.csv\n").replace(
             "labels: [positive, negative]", "labels: ['0', '1']"),
         files={"data/sentiment.csv": "id,text,label,split\n1,Loved it,1,train\n2,Hated it,0,train\n"
                                      "3,Great fun,1,test\n4,Dull,0,test\n"}),
    Case("CSV 0/1 labels when the labels are words", ("sentiment.csv:2", "unknown label '1'", "the number 1"),
         yaml=edit("      file: data/sentiment.jsonl\n", "      file: data/sentiment.csv\n"),
         files={"data/sentiment.csv": "id,text,label,split\n1,Loved it,1,train\n2,Hated it,0,train\n"
                                      "3,Great fun,1,test\n4,Dull,0,test\n"}, problems=4),
    Case("a boolean id", ("sentiment.jsonl:1", "id", "got the boolean true"), files=sentiment_rows({"id": True})),
    Case("an empty id", ("sentiment.jsonl:1", "id", "got empty text"), files=sentiment_rows({"id": ""})),
    Case("ids 7 and '7' are the same id", ("sentiment.jsonl:2", "duplicate id '7'"),
         files=sentiment_rows({"id": 7}, {"id": "7"})),
    Case("a number as input text", ("sentiment.jsonl:1", "text", "expected non-empty text, got the number 5"),
         files=sentiment_rows({"text": 5})),
    # 7. model paths
    run_case("--model", "./no/such/model", name="a model path that does not exist",
             words=("model path './no/such/model' does not exist",)),
    run_case(name="the suite's model path does not exist", words=("model path '/no/such/model' does not exist",),
             yaml=edit("model: random:tiny-llama\n", "model: /no/such/model\n")),
    run_case("--model", "~/no-such-trident-model", name="a ~ model path that does not exist",
             words=("model path '~/no-such-trident-model' does not exist",)),
    run_case("--model", "suite/suite.yaml", name="a model path that is a file",
             words=("model path 'suite/suite.yaml' is a file",)),
    run_case("--model", "random:nope", name="an unknown random architecture",
             words=("unknown random architecture 'nope'",)),
    run_case("--dtype", "float8", name="an unknown dtype", words=("unknown dtype 'float8'",)),
    # 8. what an arm variant needs, caught by validate
    Case("finetuned: names no variant", ("arms[1].finetuned", "unknown arm variant 'lora'"),
         yaml=add_arm("  - arm: rag\n    name: rag-ft\n    mode: examples\n    finetuned: lora\n")),
    Case("finetuned: names a prompt variant", ("arms[1].finetuned", "'zero-shot' is a prompt variant"),
         yaml=add_arm("  - arm: rag\n    name: rag-ft\n    mode: examples\n    finetuned: zero-shot\n")),
    Case("corpus retrieval without a corpus", ("arms[1].mode", "corpus retrieval needs a `corpus:`"),
         yaml=add_arm("  - arm: rag\n    name: rag\n")),
    Case("a fine-tune on a task without train examples",
         ("arms[1]", "fine-tuning needs at least 2 train examples; task capitals has 0"),
         yaml=add_arm("  - arm: finetune\n    name: lora\n", edit("        train: data/capitals_train.jsonl\n", ""))),
    Case("a fine-tune on a task with one train example", ("task capitals has 1",),
         yaml=add_arm("  - arm: finetune\n    name: lora\n"),
         files={"data/capitals_train.jsonl": CAPITALS_TRAIN.splitlines(keepends=True)[0]}),
    Case("a head on a qa task", ("arms[1].method", "method head is for classification tasks; task capitals is qa"),
         yaml=add_arm("  - arm: finetune\n    name: head\n    method: head\n")),
    Case("a head trained across tasks", ("arms[1].scope", "use scope: per_task"),
         yaml=add_arm("  - arm: finetune\n    name: head\n    method: head\n    scope: multi_task\n"
                      "    tasks: [sentiment]\n")),
    Case("select_on: metric on a qa task", ("arms[1].select_on", "task capitals is qa"),
         yaml=add_arm("  - arm: finetune\n    name: lora\n    select_on: metric\n")),
    Case("knowledge injection without a corpus", ("arms[1].knowledge", "no `corpus:`"),
         yaml=add_arm("  - arm: finetune\n    name: lora\n    knowledge: before\n")),
    Case("example retrieval on a task without train examples", ("arms[1].mode", "task capitals has none"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    mode: examples\n",
                      edit("        train: data/capitals_train.jsonl\n", ""))),
    Case("a rag filter on metadata no corpus document has",
         ("arms[1].filter", "task capitals", "filter.doc_field 'region' is in no corpus document's metadata"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    tasks: [capitals]\n"
                      "    filter: {doc_field: region, example_field: section}\n", WITH_CORPUS), files=CORPUS_FILES),
    Case("a rag filter on a field the examples lack",
         ("arms[1].filter", "filter.example_field 'chapter' is missing from example"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    tasks: [capitals]\n"
                      "    filter: {doc_field: section, example_field: chapter}\n", WITH_CORPUS),
         files={"corpus/docs.jsonl": rows({"id": "d1", "title": "Europe", "text": "Paris.", "section": "d1"})}),
    Case("a fusion setting on a dense retriever", ("arms[1]", "rrf_k applies to retriever: hybrid only"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    rrf_k: 10\n", WITH_CORPUS), files=CORPUS_FILES),
    Case("a document filter on example retrieval", ("arms[1]", "filter restricts corpus documents"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    mode: examples\n"
                      "    filter: {doc_field: section, example_field: section}\n")),
    Case("an unknown retriever", ("arms[1].retriever", "bm26"),
         yaml=add_arm("  - arm: rag\n    name: rag\n    retriever: bm26\n", WITH_CORPUS), files=CORPUS_FILES),
    Case("more shots than train examples", ("arms[1].shots", "3 shots but task sentiment has only 2"),
         yaml=add_arm("  - arm: prompt\n    name: 3-shot\n    shots: 3\n    tasks: [sentiment]\n")),
    Case("an arm restricted to an unknown task", ("arms[1].tasks", "unknown task 'sentimnt'"),
         yaml=add_arm("  - arm: prompt\n    name: one\n    tasks: [sentimnt]\n")),
    Case("a profile's fine-tune on a task without train examples",
         ("profiles.quick.arms[0]", "fine-tuning needs at least 2"),
         yaml=edit("        train: data/capitals_train.jsonl\n", "")
         + "profiles:\n  quick:\n    arms:\n      - {arm: finetune, name: lora}\n"),
    # 9. names and paths
    Case("suite name '..'", ("suite.yaml:1", "name", "not only dots"), yaml=edit("name: hostile\n", "name: '..'\n")),
    Case("task name '..'", ("tasks[0].name", "not only dots"), yaml=edit("  - name: sentiment\n", "  - name: '..'\n")),
    Case("arm name with a slash", ("arms[0].name", "got '../x'"),
         yaml=edit("    name: zero-shot\n", "    name: ../x\n")),
    Case("arm name '.'", ("arms[0].name", "not only dots"), yaml=edit("    name: zero-shot\n", "    name: '.'\n")),
    Case("profile name '..'", ("suite.yaml:28", "profiles: key '..'", "not only dots"),
         yaml=BASE_YAML + "profiles:\n  '..':\n    limits: {sentiment: null}\n"),
    Case("data file given by an absolute path", ("data.file", "lies outside the suite folder", "--allow-outside-paths"),
         yaml=edit("data/sentiment.jsonl", "@TMP@/outside/sentiment.jsonl"),
         outside={"outside/sentiment.jsonl": SENTIMENT}),
    Case("data file reached through '..'", ("data.files.test", "lies outside the suite folder"),
         yaml=edit("data/capitals_test.jsonl", "../outside/capitals_test.jsonl"),
         outside={"outside/capitals_test.jsonl": CAPITALS_TEST}),
    Case("data file that is a symlink out of the folder", ("data.file", "lies outside the suite folder"),
         files={"data/sentiment.jsonl": None}, links={"data/sentiment.jsonl": "outside/sentiment.jsonl"},
         outside={"outside/sentiment.jsonl": SENTIMENT}),
    Case("an outside path that does not exist says nothing of it", ("lies outside the suite folder",),
         absent=("not found",), yaml=edit("data/capitals_test.jsonl", "../../etc/no-such-file.jsonl")),
    Case("an outside path with the opt-in", ("is valid",), code=0, args=("--allow-outside-paths",),
         yaml=edit("data/capitals_test.jsonl", "../outside/capitals_test.jsonl"),
         outside={"outside/capitals_test.jsonl": CAPITALS_TEST}),
    Case("corpus file outside the folder", ("corpus.files", "lies outside the suite folder"),
         yaml=edit("corpus/docs.jsonl", "../outside/docs.jsonl", WITH_CORPUS), outside={"outside/docs.jsonl": CORPUS}),
    Case("corpus folder outside the folder", ("corpus.folder", "lies outside the suite folder"),
         yaml=BASE_YAML + "corpus:\n  folder: ../outside\n", outside={"outside/a.txt": "Paris is in France."}),
    Case("a corpus folder holding a symlink out", ("corpus.folder", "lies outside the suite folder"),
         yaml=BASE_YAML + "corpus:\n  folder: docs\n", files={"docs/a.txt": "Paris is in France."},
         links={"docs/b.txt": "outside/secret.txt"}, outside={"outside/secret.txt": "SECRET-TOKEN-42"},
         absent=("SECRET-TOKEN-42",)),
    Case("an unreadable CSV does not echo its first line", ("sentiment.csv", "cannot read csv"),
         absent=("SECRET-TOKEN-42",), yaml=edit("data/sentiment.jsonl", "data/sentiment.csv"),
         files={"data/sentiment.csv": 'SECRET-TOKEN-42,x\n"a,b\nc,d,e,f\n'}),
    Case("a CSV without the fields does not list its header", ("sentiment.csv:2", "missing; expected the field 'id'"),
         absent=("SECRET-TOKEN-42",), yaml=edit("data/sentiment.jsonl", "data/sentiment.csv"),
         files={"data/sentiment.csv": "SECRET-TOKEN-42,text,label,split\n1,a,positive,train\n"}),
    # every problem of a task in one pass
    Case("a schema error does not hide a missing file", ("data.files.test", "file not found"), problems=2,
         yaml=edit("        test: data/capitals_test.jsonl\n", "        test: data/nowhere.jsonl\n").replace(
             "    metrics: [exact_match]\n", "    metrics: [exact_match]\n    max_new_tokens: lots\n")),
    Case("a schema error does not hide an unknown metric", ("tasks[1].metrics", "unknown metric 'exact'"),
         problems=2, yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact]\n    instructions: typo\n")),
    Case("a schema error in another task does not hide bad rows", ("sentiment.jsonl:1", "unknown label"),
         problems=2, files=sentiment_rows({"label": "meh"}),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [exact_match]\n    kind2: qa\n")),
    # long-standing hostile inputs, kept honest
    Case("malformed YAML", ("suite.yaml:", "not valid YAML"), yaml="name: x\ntasks: [\n  - oops: {\n"),
    Case("YAML that is a list", ("suite.yaml:1", "expected a mapping"), yaml="- name: x\n"),
    Case("an empty suite.yaml", ("expected a mapping",), yaml=""),
    Case("suite.yaml not in UTF-8", ("not valid UTF-8",), yaml="name: caf\xe9\n"),
    Case("an unknown arm kind", ("arms[1]", "unknown arm 'retrieval'"),
         yaml=add_arm("  - arm: retrieval\n    name: r\n")),
    Case("an unknown arm key", ("arms[0].shotz", "did you mean 'shots'"),
         yaml=edit("    name: zero-shot\n", "    name: zero-shot\n    shotz: 2\n")),
    Case("too many shots for the schema", ("arms[0].shots", "less than or equal to 64"),
         yaml=edit("    name: zero-shot\n", "    name: zero-shot\n    shots: 65\n")),
    Case("an unknown metric", ("tasks[0].metrics", "unknown metric 'acuracy'", "did you mean 'accuracy'"),
         yaml=edit("    metrics: [accuracy]\n", "    metrics: [acuracy]\n")),
    Case("a metric of another kind", ("metric 'accuracy' does not apply to qa tasks",),
         yaml=edit("    metrics: [exact_match]\n", "    metrics: [accuracy]\n")),
    Case("no metrics", ("tasks[0].metrics", "at least 1"), yaml=edit("    metrics: [accuracy]\n", "    metrics: []\n")),
    Case("an unknown task kind", ("tasks[0].kind", "got 'classify'"),
         yaml=edit("    kind: classification\n", "    kind: classify\n")),
    Case("an unknown top-level key", ("sede", "did you mean 'seed'"), yaml=BASE_YAML + "sede: 1\n"),
    Case("a misspelt task key", ("tasks[0].lables", "did you mean 'labels'"),
         yaml=edit("    labels: [positive, negative]\n", "    labels: [positive, negative]\n    lables: [a]\n")),
    Case("a missing instruction", ("tasks[0].instruction", "required key is missing"),
         yaml=edit("    instruction: Is the review positive or negative?\n", "")),
    Case("an unknown split name in files", ("suite.yaml:18", "tasks[1].data.files: key 'dev'", "got 'dev'"),
         yaml=edit("        train: data/capitals_train.jsonl\n", "        dev: data/capitals_train.jsonl\n")),
    Case("two data sources", ("tasks[0].data", "give exactly one of"),
         yaml=edit("      file: data/sentiment.jsonl\n", "      file: data/sentiment.jsonl\n      files: {}\n")),
    Case("two tasks with one name", ("tasks", "repeated: sentiment"),
         yaml=edit("  - name: capitals\n", "  - name: sentiment\n")),
    Case("two arms with one name", ("arms", "repeated: zero-shot"),
         yaml=add_arm("  - arm: prompt\n    name: zero-shot\n    shots: 1\n")),
    Case("no arms", ("arms", "at least 1"), yaml=BASE_YAML.split("arms:")[0] + "arms: []\n"),
    Case("a missing data file", ("data.files.test", "file not found"), files={"data/capitals_test.jsonl": None}),
    Case("an unsupported data format", ("unsupported data format '.txt'",),
         yaml=edit("data/sentiment.jsonl", "data/sentiment.txt"), files={"data/sentiment.txt": SENTIMENT}),
    Case("a line that is not JSON", ("sentiment.jsonl:2", "not valid JSON"),
         files={"data/sentiment.jsonl": SENTIMENT.replace('{"id": "s2"', '{"id" "s2"', 1)}),
    Case("a JSON line that is a list", ("sentiment.jsonl:5", "expected a JSON object per line, got list"),
         files={"data/sentiment.jsonl": SENTIMENT + "[1, 2]\n"}),
    Case("data not in UTF-8", ("sentiment.jsonl:1", "not valid UTF-8"),
         files={"data/sentiment.jsonl": SENTIMENT.replace("Loved", "L\xf6ved").encode("latin-1")}),
    Case("a duplicate id", ("sentiment.jsonl:2", "duplicate id 's1' (first at"),
         files=sentiment_rows({}, {"id": "s1"})),
    Case("an unknown split", ("sentiment.jsonl:1", "split", "got 'dev'"), files=sentiment_rows({"split": "dev"})),
    Case("empty input text", ("sentiment.jsonl:1", "expected non-empty text, got empty text"),
         files=sentiment_rows({"text": "  "})),
    Case("a misspelt input field", ("sentiment.jsonl:1", "field 'text'", "did you mean 'txt'"),
         files=sentiment_rows({"text": None, "txt": "Loved it"})),
    Case("a missing corpus file", ("corpus.files", "file not found"), yaml=WITH_CORPUS),
    Case("an empty corpus", ("the corpus is empty",), yaml=WITH_CORPUS, files={"corpus/docs.jsonl": ""}),
    Case("a corpus document twice", ("docs.jsonl:2", "duplicate document id 'd1'"), yaml=WITH_CORPUS,
         files={"corpus/docs.jsonl": CORPUS.replace('"d2"', '"d1"')}),
    Case("a corpus document without text", ("docs.jsonl:1", "has no text"), yaml=WITH_CORPUS,
         files={"corpus/docs.jsonl": CORPUS.replace("Paris is the capital of France; Rome of Italy.", "")}),
    Case("an unknown suite", ("unknown suite 'no-such-suite'",), suite_arg="no-such-suite"),
    run_case("--profile", "smoke", name="a profile the suite lacks", words=("has no profiles",)),
    run_case("--arms", "zero-shoot", name="an unknown arm variant", words=("unknown arm variant 'zero-shoot'",)),
    run_case("--tasks", "capitols", name="an unknown task", words=("unknown task 'capitols'", "'capitals'")),
    run_case(name="run refuses what validate refuses", words=("not only dots",),
             yaml=edit("name: hostile\n", "name: '..'\n")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, env: Path, monkeypatch, capsys):
    tmp = env
    suite = tmp / "suite"
    write_suite(case, tmp, suite)
    monkeypatch.chdir(tmp)
    monkeypatch.delenv("TRIDENT_DEBUG", raising=False)
    monkeypatch.setenv("TRIDENT_RESULTS", str(tmp / "results"))
    monkeypatch.setattr(bench.runner, "load_model", _no_model)
    monkeypatch.setattr(bench.models, "load_model", _no_model)

    args = [a.replace("@TMP@", str(tmp)) for a in case.args]
    code = main([case.command, case.suite_arg or "suite", *args])

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == case.code, err
    assert not (tmp / "results").exists() or not any((tmp / "results").iterdir()), "a run directory was left"
    for word in case.absent:
        assert word not in out + err, f"{word!r} leaked into the output"
    if case.code == 0:
        assert all(w in out for w in case.words), out
        return
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == case.problems, err
    assert any(all(w in line for w in case.words) for line in errors), err


def write_suite(case: Case, tmp: Path, suite: Path) -> None:
    files: dict[str, str | bytes | None] = {**BASE_FILES, **case.files}
    yaml_text = case.yaml.replace("@TMP@", str(tmp))
    files["suite.yaml"] = yaml_text.encode("latin-1") if "\xe9" in yaml_text else yaml_text
    for rel, content in [*files.items(), *case.outside.items()]:
        if content is None:
            continue
        path = (tmp / rel) if rel in case.outside else (suite / rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for rel, target in case.links.items():
        (suite / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(tmp / target, suite / rel)


def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded: the error must come before any compute")


def test_cases_have_unique_names():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_markdown_cells_show_html_as_text():
    from bench.render_markdown import markdown_table
    from bench.tables import Row, Table

    lines = markdown_table(Table("t", ["arm", "score"], [Row(["<script>alert(1)</script> & a|b", "0.5"])]))
    assert lines[-1] == "| &lt;script&gt;alert(1)&lt;/script&gt; &amp; a\\|b | 0.5 |"
