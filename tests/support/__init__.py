"""Helpers of the test suite, imported as a module (``from support import ...``).

``conftest.py`` only pins the environment and provides the fixtures; everything a test
calls lives here, once: processes (:mod:`support.cli`, :mod:`support.processes`), limits
files, lake checks, network, faults, flow runs and the live board (:mod:`support.board`).
"""

from deployments.serve import SERVING
from support.board import Board, holding, rendered_lanes, scraped, watching_board
from support.cli import ROOT, CliRun, run_cli, script, stop_with_ctrl_c, wait_for_text
from support.faults import Fault, FaultyPartnerApi, Hit
from support.lake_checks import extract_matches_lake, file_bytes, lake_checksums, table_checksums
from support.limits_files import capped_limits, edited_limits
from support.network import free_port, listening
from support.processes import command_lines, descendants, engine_pid_for, left_running, pids_with_arg, running
from support.proxy import CuttableProxy, cuttable_proxy
from support.runs import (
    TaggedTaskRuns,
    assert_every_limit_held,
    flow_run_id,
    force_state,
    kill_while_holding,
    running_task_run,
    server_text,
    task_run_logs,
    trigger,
    trigger_at,
    wait_final,
    wait_final_at,
)
from support.stack import Stack, linked_data_dir, slot_usage
from support.terminal import Terminal, fresh_terminal_env

__all__ = [
    "ROOT",
    "SERVING",
    "CuttableProxy",
    "cuttable_proxy",
    "assert_every_limit_held",
    "Board",
    "holding",
    "rendered_lanes",
    "scraped",
    "watching_board",
    "CliRun",
    "command_lines",
    "left_running",
    "Terminal",
    "fresh_terminal_env",
    "Fault",
    "FaultyPartnerApi",
    "Hit",
    "Stack",
    "descendants",
    "capped_limits",
    "edited_limits",
    "engine_pid_for",
    "extract_matches_lake",
    "file_bytes",
    "flow_run_id",
    "free_port",
    "kill_while_holding",
    "lake_checksums",
    "linked_data_dir",
    "listening",
    "pids_with_arg",
    "run_cli",
    "running",
    "running_task_run",
    "TaggedTaskRuns",
    "force_state",
    "script",
    "server_text",
    "task_run_logs",
    "slot_usage",
    "stop_with_ctrl_c",
    "table_checksums",
    "trigger",
    "trigger_at",
    "wait_final",
    "wait_final_at",
    "wait_for_text",
]
