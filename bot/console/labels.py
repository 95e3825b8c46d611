"""Every code the staff console shows, with the Chinese label staff read (customer-facing words
are in domain.yml, bot/console/texts.py reads them). One module for the handoff desk, the
campaigns page and the dashboard, so a code reads the same on every page.

Channels come under two sets of names: the CRM's (`web`, `wechat`: crm_store.models.CHANNELS,
a customer's, a campaign message's, a dashboard row's) and Rasa's (`webchat`, `wechat`, `rest`:
a handoff's output channel, where an agent's reply goes). Both read from `CHANNELS`.
"""

from __future__ import annotations

CHANNELS = {"web": "网页", "wechat": "微信"}
RASA_CHANNELS = {"webchat": CHANNELS["web"], "wechat": CHANNELS["wechat"], "rest": "接口"}

# The handoff desk
HANDOFF_REASONS = {
    "customer_request": "客户要求",
    "complaint": "投诉",
    "fallback": "机器人未理解",
    "detractor": "差评回访",
    "agent_initiated": "客服主动接入",
}
HANDOFF_OUTCOMES = {"resolved": "已解决", "ticket_opened": "已建工单", "call_back": "需回电"}
ORDER_STATUSES = {
    "pending": "待付款",
    "paid": "已付款",
    "shipped": "已发货",
    "delivered": "已签收",
    "completed": "已完成",
    "cancelled": "已取消",
    "refunded": "已退款",
}
TICKET_KINDS = {"complaint": "投诉", "return": "退换货", "refund": "退款", "message": "留言"}

# The campaigns page
PLAN_OUTCOMES = {
    "send": "将发送",
    "daily_cap": "超出每日上限（以后再发）",
    "budget": "超出每周联系上限（以后再发）",
    "one_per_day": "当天已有同类消息（以后再发）",
    "already_planned": "已安排过",
    "no_consent": "未同意接收",
    "open_complaint": "有未结投诉",
    "control_group": "对照组（不发送，用于衡量效果）",
}
CAMPAIGN_CHANGES = {"set_campaign_enabled": "开关", "set_campaign_daily_cap": "每日上限"}
CAMPAIGN_STATUSES = {"active": "已开启", "paused": "已关闭"}

# The dashboard
CHURN_BAND_NAMES = {"low": "流失风险低", "medium": "流失风险中", "high": "流失风险高"}
FIGURE_TITLES = {  # the dashboard's figures (crm_store.dashboard.FIGURES)
    "survey-trend": "按周期的满意度",
    "survey-breakdown": "分组满意度",
    "survey-scores": "评分分布",
    "comments": "客户原话",
    "themes": "主题变化",
    "follow-ups": "待处理的差评回访",
    "campaigns": "关怀活动",
    "campaign-reasons": "失败、跳过与推迟的原因",
    "win-back": "挽回优惠与回流",
    "bot": "机器人概况",
    "handoff-reasons": "转人工原因",
    "misunderstood": "未理解的高频消息（可补充训练数据）",
    "agents": "客服处理情况",
    "funnel": "生命周期漏斗",
    "segments": "RFM 分层",
}
COLUMN_HEADINGS = {  # a figure's columns, in the tables, charts and CSV headings
    "group": "分组",
    "asked": "发出",
    "answered": "完整回答",
    "partial": "部分回答",
    "declined": "拒答",
    "no_reply": "未回复",
    "response_rate": "回复率",
    "csat_answers": "CSAT 答卷",
    "csat_average": "CSAT 均分",
    "csat_satisfied_share": "满意率",
    "nps_answers": "NPS 答卷",
    "promoters": "推荐者",
    "passives": "中立者",
    "detractors": "贬损者",
    "nps": "NPS",
    "question": "问题",
    "score": "分数",
    "answers": "人数",
    "share": "占比",
    "source": "来源",
    "id": "编号",
    "at": "时间",
    "channel": "渠道",
    "customer_id": "客户",
    "csat": "CSAT",
    "text": "内容",
    "themes": "主题",
    "polarity": "倾向",
    "theme": "主题",
    "mentions": "本期提及",
    "previous_mentions": "上期提及",
    "change": "变化",
    "change_share": "变化率",
    "ticket_id": "工单",
    "response_id": "答卷",
    "comment": "评论",
    "status": "状态",
    "owner": "负责人",
    "created_at": "创建时间",
    "sla_due_at": "SLA 截止",
    "sla_state": "SLA 状态",
    "campaign": "活动",
    "name": "名称",
    "kind": "类型",
    "planned": "计划",
    "waiting": "等待",
    "deferred": "推迟",
    "sending": "发送中",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "失败",
    "skipped": "跳过",
    "control": "对照组",
    "replies": "回复",
    "opt_outs": "退订",
    "reply_rate": "回复率",
    "opt_out_rate": "退订率",
    "outcome": "结果",
    "reason": "原因",
    "messages": "消息数",
    "offers_issued": "已发优惠",
    "offers_redeemed": "已核销",
    "redemption_rate": "核销率",
    "treated": "试验组",
    "treated_returned": "试验组回流",
    "control_returned": "对照组回流",
    "treated_rate": "试验组回流率",
    "control_rate": "对照组回流率",
    "uplift": "提升",
    "uplift_low": "提升 95% 下限",
    "uplift_high": "提升 95% 上限",
    "conversations": "会话数",
    "contained": "机器人解决",
    "handed_off": "转人工",
    "containment_rate": "自助解决率",
    "handoff_rate": "转人工率",
    "customer_turns": "客户消息",
    "fallback_turns": "未理解",
    "fallback_rate": "未理解率",
    "handoffs_closed": "已结束人工会话",
    "average_handling_seconds": "平均处理秒数",
    "handoffs": "转人工",
    "turns": "次数",
    "last_seen": "最近出现",
    "agent": "客服",
    "stage": "阶段",
    "customers": "客户数",
    "revenue_cents": "收入（元）",
    "segment": "分层",
    "average_clv_cents": "平均 CLV（元）",
}
STAGES = {
    "new": "新客",
    "converting": "转化中",
    "maintaining": "维持",
    "loyal": "忠诚",
    "churning": "流失中",
}
SEGMENT_NAMES = {
    "champions": "冠军客户",
    "loyal": "忠诚客户",
    "new": "新客户",
    "promising": "潜力客户",
    "about_to_sleep": "即将沉睡",
    "cannot_lose": "不能失去",
    "at_risk": "流失风险",
    "hibernating": "休眠客户",
    "lost": "已流失",
    "prospect": "未购买",
    "unknown": "未分析",
}
VALUE_NAMES: dict[str, dict[str, str]] = {  # what a column's codes read as in tables, charts
    "stage": STAGES,
    "segment": SEGMENT_NAMES,
    "channel": CHANNELS,
    "polarity": {"positive": "正面", "negative": "负面", "neutral": "中性"},
    "sla_state": {"overdue": "已超时", "due_soon": "即将到期", "on_time": "未超时"},
    "source": {"survey": "问卷", "feedback": "反馈"},
    "question": {"csat": "CSAT", "nps": "NPS"},
    "outcome": {"failed": "失败", "skipped": "跳过", "deferred": "推迟"},
}
# A breakdown's groups are channels, segments, stages or churn bands (tiers and agents are names).
VALUE_NAMES["group"] = {**CHANNELS, **SEGMENT_NAMES, **STAGES, **CHURN_BAND_NAMES}
