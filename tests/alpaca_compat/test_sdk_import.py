"""The alpaca-py SDK imports in a process that has the project on sys.path: no BrokerX package shadows it."""
import sys
import sysconfig
from pathlib import Path

import alpaca
from alpaca.trading.client import TradingClient

import alpaca_compat

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_the_project_is_on_sys_path():
    assert str(PROJECT_ROOT) in [str(Path(entry or ".").resolve()) for entry in sys.path]
    assert Path(alpaca_compat.__file__).resolve().is_relative_to(PROJECT_ROOT)


def test_alpaca_is_the_sdk_from_site_packages():
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    sdk_file = Path(alpaca.__file__).resolve()

    assert sdk_file.is_relative_to(site_packages), sdk_file
    assert not sdk_file.is_relative_to(PROJECT_ROOT / "alpaca")
    assert Path(sys.modules[TradingClient.__module__].__file__).resolve().is_relative_to(site_packages)
