"""Every label of the dashboard, in Simplified Chinese (the default) and English.

Pages never hold text of their own: they ask ``translate(language, key)``, so a
label missing in one language is a test failure, not a half-translated page. The
chosen language lives in the ``perennial_lang`` cookie.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

__all__ = [
    "CATALOGUE",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "language_of",
    "translate",
]

DEFAULT_LANGUAGE: Final = "zh-CN"
LANGUAGE_COOKIE: Final = "perennial_lang"

_ZH_CN: dict[str, str] = {
    "nav.board": "看板",
    "nav.customers": "客户",
    "nav.admin": "管理",
    "nav.sign_out": "退出登录",
    "nav.signed_in_as": "当前用户",
    "nav.language": "语言",
    "nav.main": "主导航",
    "language.zh-CN": "中文",
    "language.en": "English",
    "login.title": "登录",
    "login.heading": "登录 Perennial",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误。",
    "login.locked": "登录失败次数过多，账户已锁定，请于 {time} 之后再试。",
    "login.form_expired": "页面已过期，请重新输入并登录。",
    "login.signed_out": "您已退出登录。",
    "admin.title": "系统管理",
    "admin.users": "用户",
    "admin.api_keys": "API 密钥",
    "admin.audit": "最近的审计日志",
    "admin.none": "暂无记录",
    "admin.how_to": "用命令行（perennial users add、perennial apikeys create）"
    "或管理 API 添加用户和密钥。",
    "column.username": "用户名",
    "column.display_name": "显示名称",
    "column.roles": "角色",
    "column.status": "状态",
    "column.created_at": "创建时间",
    "column.key_id": "密钥 ID",
    "column.name": "名称",
    "column.created_by": "创建者",
    "column.expires_at": "过期时间",
    "column.time": "时间",
    "column.actor": "操作者",
    "column.action": "操作",
    "column.subject": "对象",
    "column.client": "来源地址",
    "status.active": "正常",
    "status.disabled": "已停用",
    "status.locked": "已锁定",
    "status.expired": "已过期",
    "status.revoked": "已吊销",
    "status.never": "永不",
    "role.admin": "管理员",
    "role.operator": "运营",
    "role.agent": "客服",
    "role.viewer": "只读",
    "error.403.title": "无权访问",
    "error.403.text": "您的角色不能查看此页面。如需访问，请联系管理员。",
    "error.404.title": "页面不存在",
    "error.404.text": "找不到这个页面，可能地址有误或页面尚未开放。",
    "error.other.title": "请求无法完成",
    "error.other.text": "服务器无法处理这个请求。",
    "error.back": "返回首页",
}

_EN: dict[str, str] = {
    "nav.board": "Board",
    "nav.customers": "Customers",
    "nav.admin": "Admin",
    "nav.sign_out": "Sign out",
    "nav.signed_in_as": "Signed in as",
    "nav.language": "Language",
    "nav.main": "Main navigation",
    "language.zh-CN": "中文",
    "language.en": "English",
    "login.title": "Sign in",
    "login.heading": "Sign in to Perennial",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Wrong username or password.",
    "login.locked": "Too many failed sign-ins: the account is locked until {time}.",
    "login.form_expired": "The page expired; please enter your details and sign in again.",
    "login.signed_out": "You have signed out.",
    "admin.title": "Administration",
    "admin.users": "Users",
    "admin.api_keys": "API keys",
    "admin.audit": "Latest audit log entries",
    "admin.none": "Nothing yet",
    "admin.how_to": "Add users and keys with the CLI (perennial users add, perennial apikeys "
    "create) or the admin API.",
    "column.username": "Username",
    "column.display_name": "Display name",
    "column.roles": "Roles",
    "column.status": "Status",
    "column.created_at": "Created",
    "column.key_id": "Key ID",
    "column.name": "Name",
    "column.created_by": "Created by",
    "column.expires_at": "Expires",
    "column.time": "Time",
    "column.actor": "Actor",
    "column.action": "Action",
    "column.subject": "Subject",
    "column.client": "Client address",
    "status.active": "Active",
    "status.disabled": "Disabled",
    "status.locked": "Locked",
    "status.expired": "Expired",
    "status.revoked": "Revoked",
    "status.never": "Never",
    "role.admin": "Admin",
    "role.operator": "Operator",
    "role.agent": "Agent",
    "role.viewer": "Viewer",
    "error.403.title": "Access denied",
    "error.403.text": "Your role does not allow this page. Ask an admin if you need it.",
    "error.404.title": "Page not found",
    "error.404.text": "There is no page here: the address may be wrong or the page not open yet.",
    "error.other.title": "The request could not be completed",
    "error.other.text": "The server could not handle this request.",
    "error.back": "Back to the start page",
}

CATALOGUE: Final[dict[str, dict[str, str]]] = {"zh-CN": _ZH_CN, "en": _EN}
LANGUAGES: Final = tuple(CATALOGUE)
"""Language tags offered by the switch, the default first."""


def translate(language: str, key: str, **values: object) -> str:
    """The label ``key`` in ``language`` with ``{name}`` placeholders filled in.

    An unknown language falls back to the default; an unknown key raises ``KeyError``
    (a page asking for a label nobody wrote is a bug to catch in tests).
    """
    labels = CATALOGUE.get(language, CATALOGUE[DEFAULT_LANGUAGE])
    text = labels[key]
    return text.format(**values) if values else text


def language_of(request: Request) -> str:
    """The language the request's cookie chose, or zh-CN."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, DEFAULT_LANGUAGE)
    return chosen if chosen in CATALOGUE else DEFAULT_LANGUAGE
