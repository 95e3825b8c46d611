"""Reference data: the product catalogue and the demo staff accounts."""

from __future__ import annotations

from datetime import datetime

from crm_store.demo.tables import Batch
from crm_store.models import Product, StaffUser
from crm_store.staff import hash_password

# sku: (name, category, price in cents, warranty months)
CATALOGUE: dict[str, tuple[str, str, int, int]] = {
    "AF-200": ("空气炸锅", "厨房电器", 39_900, 12),
    "RC-300": ("电饭煲", "厨房电器", 49_900, 24),
    "BL-500": ("破壁机", "厨房电器", 89_900, 24),
    "RV-700": ("扫地机器人", "清洁电器", 249_900, 12),
    "WP-600": ("净水器", "环境电器", 199_900, 36),
    "TB-100": ("电动牙刷", "个护电器", 19_900, 12),
    "HD-150": ("吹风机", "个护电器", 29_900, 12),
    "HM-120": ("加湿器", "环境电器", 25_900, 12),
    "KT-090": ("电热水壶", "厨房电器", 12_900, 12),
    "AP-800": ("空气净化器", "环境电器", 169_900, 24),
    "DW-900": ("洗碗机", "厨房电器", 399_900, 24),
    "CM-400": ("咖啡机", "厨房电器", 129_900, 12),
}
CHEAP = ["TB-100", "KT-090", "HD-150", "HM-120", "AF-200", "RC-300"]
EXPENSIVE = ["RV-700", "DW-900", "WP-600", "CM-400", "AP-800", "BL-500"]
STAFF = [
    ("agent", "客服小张", "agent"),
    ("agent2", "客服小李", "agent"),
    ("supervisor", "主管王姐", "supervisor"),
    ("manager", "经理陈总", "manager"),
]
DEMO_STAFF_PASSWORD = "carebot-demo"


def reference_rows(batch: Batch, now: datetime) -> None:
    for sku, (name, category, price, warranty) in CATALOGUE.items():
        batch.add(
            Product,
            sku=sku,
            name=name,
            category=category,
            price_cents=price,
            warranty_months=warranty,
        )
    for username, display_name, role in STAFF:
        batch.add(
            StaffUser,
            username=username,
            display_name=display_name,
            role=role,
            active=True,
            password_hash=hash_password(DEMO_STAFF_PASSWORD),
            created_at=now,
        )
