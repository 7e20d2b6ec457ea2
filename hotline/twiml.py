"""TwiML answers, built by pure functions with Twilio's own TwiML classes (no I/O here).

Every spoken text is Mandarin: `<Say language="cmn-CN">` with a voice that speaks it (Amazon
Polly's Zhiyu by default, HOTLINE_VOICE), so Twilio never reads Chinese with an English voice.
"""

from __future__ import annotations

from datetime import datetime

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

LANGUAGE = "cmn-CN"
GATHER_TIMEOUT_SECONDS = 8
DIAL_TIMEOUT_SECONDS = 30

# Menu digit -> request kind.
MENU = {"1": "meal", "2": "home_care", "3": "day_care", "9": "emergency"}

CENTER = "静海区养老服务调度中心"
MENU_TEXT = "需要助餐请按1，居家照护请按2，日间照料请按3，紧急求助请按9。"
RETRY_TEXT = "没有听清您的选择。"
OPERATOR_TEXT = "您好，这里是" + CENTER + "，正在为您转接调度员，请稍候。"
AFTER_HOURS_TEXT = "您好，这里是" + CENTER + "，现在是非工作时间，正在为您转接值班调度员，请稍候。"
HELP_OPERATOR_TEXT = "正在为您转接调度员，请稍候。"
EMERGENCY_TEXT = "已收到您的紧急求助，调度中心和您的家属会马上收到通知。正在为您转接调度员，请不要挂机。"
SPOKEN_KIND = {"meal": "助餐", "home_care": "居家照护", "day_care": "日间照料", "emergency": "紧急求助"}


def greeting(name: str, *, family: bool) -> str:
    """The elder is greeted by name; a relative calling is told whom the booking is for."""
    if family:
        return f"您好，这里是{CENTER}，将为{name}预约服务。"
    return f"{name}您好，这里是{CENTER}。"


def spoken_time(start: datetime, end: datetime, today: datetime) -> str:
    """今天11点到12点30分: how a time window is read out (both ends local time)."""

    def clock(t: datetime) -> str:
        return f"{t.hour}点" + (f"{t.minute}分" if t.minute else "")

    days = (start.date() - today.date()).days
    day = {0: "今天", 1: "明天"}.get(days, f"{start.month}月{start.day}日")
    return f"{day}{clock(start)}到{clock(end)}"


def confirmation_text(kind: str, when: str) -> str:
    return (
        f"好的，已为您登记{SPOKEN_KIND.get(kind, kind)}，时间是{when}。"
        "服务机构接单后，我们会发短信通知您的家属。谢谢，再见。"
    )


def _say(node: VoiceResponse, text: str, voice: str) -> None:
    node.say(text, language=LANGUAGE, voice=voice)


def menu(*, intro: str, gather_url: str, voice: str) -> str:
    """Greeting and menu inside one <Gather numDigits=1>. No key pressed still posts to the
    gather URL (actionOnEmptyResult), where it counts like a wrong key."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        action=gather_url,
        method="POST",
        timeout=GATHER_TIMEOUT_SECONDS,
        action_on_empty_result=True,
    )
    gather.say(intro + MENU_TEXT, language=LANGUAGE, voice=voice)
    return str(response)


def dial_operator(*, intro: str, operator: str, voice: str) -> str:
    """Say why, then put the caller through to the on-duty operator."""
    response = VoiceResponse()
    _say(response, intro, voice)
    response.dial(operator, timeout=DIAL_TIMEOUT_SECONDS)
    return str(response)


def confirm(*, text: str, voice: str) -> str:
    response = VoiceResponse()
    _say(response, text, voice)
    response.hangup()
    return str(response)


def sms_reply(text: str | None) -> str:
    """A <Message> reply, or an empty <Response/> (nothing is sent back)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def empty() -> str:
    return str(MessagingResponse())
