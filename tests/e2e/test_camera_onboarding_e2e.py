"""Adding a camera in the console: the stream address is checked while typing, and "test connection"
reports the reason for a wrong path and codec/size/fps for the sample camera, in Chinese."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import USERS, Tab

pytestmark = pytest.mark.e2e


def login(page: Page, role: str) -> None:
    username, _, _, password = USERS[role]
    page.goto("/#/login")
    page.locator('[data-testid="login-username"] input, input[data-testid="login-username"]').first.fill(
        username
    )
    page.locator('[data-testid="login-password"] input, input[data-testid="login-password"]').first.fill(
        password
    )
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)


def test_add_camera_checks_the_address_and_tests_the_connection(tab: Any, rtsp: Any) -> None:
    t: Tab = tab(width=1366, height=768)
    page = t.page
    login(page, "admin")
    page.goto("/#/cameras")
    page.get_by_test_id("camera-add").click()
    url = page.locator('[data-testid="camera-form-url"] input, input[data-testid="camera-form-url"]').first

    url.fill("rtps://10.0.0.5/live")  # a typo in the scheme: refused while typing, in Chinese
    expect(page.locator(".el-form-item__error").first).to_contain_text("是否应为 rtsp://")

    url.fill(rtsp.url("vtest").replace("/vtest", "/no-such-path"))
    expect(page.locator(".el-form-item__error")).to_have_count(0)
    page.get_by_test_id("camera-form-test").click()
    result = page.get_by_test_id("camera-form-test-result")
    expect(result).to_have_attribute("data-ok", "false")
    expect(result).to_have_attribute("data-code", "not_found")
    expect(result).to_contain_text("码流路径不存在（404）")

    url.fill(rtsp.url("vtest"))
    expect(result).to_have_count(0)  # a new address clears the old answer
    page.get_by_test_id("camera-form-test").click()
    expect(result).to_have_attribute("data-ok", "true", timeout=20_000)
    expect(result).to_contain_text("连接成功")
    expect(result).to_contain_text("768×576")
    t.shot("camera-test-connection")
    assert not t.errors, t.errors
