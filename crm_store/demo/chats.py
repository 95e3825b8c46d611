"""Generated chats: conversations of one to three turns each, and the survey asked at their end."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from crm_store.demo.draws import Draws
from crm_store.demo.tables import Batch, stamp

INTENTS = (
    "order_status",
    "warranty_query",
    "points_balance",
    "return_request",
    "complaint",
    "product_usage",
    "greet",
    "goodbye",
)
THEMES = ["物流", "售后", "产品质量", "客服态度", "价格", "使用方法"]


class ChatRows(Draws):
    """Conversations, their turns and end-of-chat surveys."""

    def conversations(
        self, batch: Batch, customer_id: int, persona: str, created_at: datetime
    ) -> datetime | None:
        """Chats for 30% of customers, none before sign-up; the end of the last one."""
        last = None
        if self.random() >= 0.3:
            return None
        for number in range(self.between(1, 3)):
            started = self.ago(self.between(0, 540))
            if started < created_at:
                continue
            conversation_id = f"demo-{customer_id}-{number}"
            channel = self.pick(("web", "wechat"))
            ended = self.turns(batch, customer_id, conversation_id, channel, started)
            row = (
                conversation_id,
                customer_id,
                channel,
                stamp(started),
                stamp(ended),
                stamp(ended),
            )
            batch.conversations.append(row)
            self.survey(batch, customer_id, conversation_id, channel, persona, ended)
            last = max(last or ended, ended)
        return last

    def turns(
        self, batch: Batch, customer_id: int, conversation_id: str, channel: str, started: datetime
    ) -> datetime:
        at, rows = started, batch.interactions
        for _ in range(self.between(1, 3)):
            intent, confidence = self.pick(INTENTS), round(0.45 + self.random() * 0.54, 2)
            rows.append(
                (conversation_id, customer_id, channel, "customer", None, intent, confidence)
                + ("bot", None, stamp(at))
            )
            at += timedelta(seconds=self.between(1, 5))
            rows.append(
                (conversation_id, customer_id, channel, "bot", None, None, None)
                + ("bot", None, stamp(at))
            )
            at += timedelta(seconds=self.between(10, 120))
        return at

    def survey(
        self,
        batch: Batch,
        customer_id: int,
        conversation_id: str,
        channel: str,
        persona: str,
        asked_at: datetime,
    ) -> None:
        if self.random() >= 0.6:
            return
        answered = self.random() < 0.75
        unhappy = persona == "drifting" and self.random() < 0.5
        csat = self.pick((1, 2, 2, 3)) if unhappy else self.pick((3, 4, 4, 5, 5, 5))
        nps = self.between(0, 6) if unhappy else self.pick((6, 7, 8, 9, 9, 10, 10))
        themes = self.rng.sample(THEMES, self.between(0, 2)) if answered else []
        batch.survey_responses.append(
            (conversation_id, "end_of_chat", channel, "answered" if answered else "declined")
            + (customer_id, None, csat if answered else None, nps if answered else None, None)
            + (json.dumps(themes), stamp(asked_at), stamp(asked_at + timedelta(minutes=1)))
        )
