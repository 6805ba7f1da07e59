"""Bulk import of history and business data (events, profiles, identities, ad spend) from CSV, JSON Lines
and Parquet files, with the same rules as the ingestion API. See docs/import.md."""

from edupulse.importer.job import ImportProblem
from edupulse.importer.mapping import ColumnMapping, MappingError, load_mapping
from edupulse.importer.run import ImportOptions, ImportStopped, ImportSummary, run_import
from edupulse.importer.sources import SourceError

__all__ = [
    "ColumnMapping",
    "ImportOptions",
    "ImportProblem",
    "ImportStopped",
    "ImportSummary",
    "MappingError",
    "SourceError",
    "load_mapping",
    "run_import",
]
