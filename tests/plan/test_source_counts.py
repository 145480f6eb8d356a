"""`Source.count`, which the plan reads: each built-in source that tells its count yields exactly that many records
when every input is usable, and at most that many otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llava_adapt.data.records import CaptionRecord
from llava_adapt.domain import DomainContractError, Source, SourceContext, check_domain
from llava_adapt.registry import registry


def _ctx(tmp_path: Path) -> SourceContext:
    (tmp_path / "out").mkdir(exist_ok=True)
    return SourceContext(data_root=tmp_path, output_dir=tmp_path / "out", seed=3)


def _count_and_yield(domain: str, source: str, args: dict, ctx: SourceContext) -> tuple[int | None, int]:
    src = registry.get(domain).sources[source]
    parsed = src.args.model_validate(args)
    told = src.count(parsed, ctx)
    return told, sum(isinstance(r, CaptionRecord) for r in src.load(parsed, ctx))


@pytest.mark.parametrize(
    "domain, source, args",
    [
        ("biomed", "synthetic", {"n_images": 5, "image_size": 32, "dicom_test_files": ["CT_small.dcm"]}),
        ("general", "shapes", {"num_images": 6, "image_size": 16}),
        ("scienceqa", "synthetic", {"n_train": 7, "n_test": 3}),
        ("scienceqa", "synthetic", {"n_train": 7, "n_test": 3, "split": "test"}),
    ],
)
def test_synthetic_sources_yield_what_they_count(tmp_path: Path, domain: str, source: str, args: dict):
    told, yielded = _count_and_yield(domain, source, args, _ctx(tmp_path))
    assert told == yielded


def test_uncountable_arguments_say_so(tmp_path: Path):
    ctx = _ctx(tmp_path)
    synthetic = registry.get("biomed").sources["synthetic"]
    assert synthetic.count(synthetic.args(dicom_test_files=["*.dcm"]), ctx) is None  # depends on what is installed
    sqa = registry.get("scienceqa").sources["synthetic"]
    assert sqa.count(sqa.args(no_image="skip"), ctx) is None
    assert registry.get("general").sources["coco"].count is None


def test_figure_file_rows_are_counted(tmp_path: Path):
    ctx = _ctx(tmp_path)
    figures = registry.get("biomed").sources["figures"]
    rows = [{"pair_id": f"p{n}", "fig_caption": f"caption {n}"} for n in range(9)]
    (tmp_path / "pmc.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "fig_captions.json").write_text(json.dumps({"ct": rows[:4], "mri": rows[4:]}), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    for name in ("pmc.jsonl", "fig_captions.json", "rows.parquet"):
        assert figures.count(figures.args(path=name), ctx) == 9
    assert figures.count(figures.args(path="pmc.jsonl", limit=4), ctx) == 4
    assert figures.count(figures.args(path="missing.jsonl"), ctx) is None
    assert figures.count(figures.args(path="../outside.jsonl"), ctx) is None


def test_check_domain_rejects_a_count_that_is_not_callable():
    domain = registry.get("general")
    bad = Source(description="x", load=lambda args, ctx: iter(()), count=3)  # type: ignore[arg-type]
    broken = type(domain)(**{**domain.__dict__, "sources": {"bad": bad}})
    with pytest.raises(DomainContractError, match=r"sources\['bad'\]\.count must be callable"):
        check_domain(broken, "general")
