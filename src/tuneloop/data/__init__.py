"""Canonical records, format readers, validation, mixing and data cards.

Imports nothing else of tuneloop's: checks that need a model's chat template take
a render function as an argument (the CLI passes ``tuneloop.models.render_for_training``).
"""

from tuneloop.data.findings import Finding, Report
from tuneloop.data.formats import convert_file, detect_format
from tuneloop.data.io import (
    DataError,
    Row,
    atomic_path,
    parse_record,
    read_jsonl,
    read_records,
    write_jsonl,
)
from tuneloop.data.records import (
    RECORD_TYPES,
    Conversation,
    EvalSample,
    FunctionCall,
    FunctionSpec,
    LabeledExample,
    Message,
    Metadata,
    PreferencePair,
    ToolCall,
    ToolSpec,
    record_kind,
    to_chat_messages,
    tools_as_dicts,
)
from tuneloop.data.validate import ValidateConfig, validate_files

__all__ = [
    "Finding",
    "Report",
    "ValidateConfig",
    "convert_file",
    "detect_format",
    "validate_files",
    "RECORD_TYPES",
    "Conversation",
    "DataError",
    "EvalSample",
    "FunctionCall",
    "FunctionSpec",
    "LabeledExample",
    "Message",
    "Metadata",
    "PreferencePair",
    "Row",
    "ToolCall",
    "ToolSpec",
    "atomic_path",
    "parse_record",
    "read_jsonl",
    "read_records",
    "record_kind",
    "to_chat_messages",
    "tools_as_dicts",
    "write_jsonl",
]
