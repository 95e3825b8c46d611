"""`carebot forget` reaches the demo's WeChat simulator: a user and their records go."""

from __future__ import annotations

from tests.bot.wechat_sim.helpers import config, running_sim


async def test_a_forgotten_user_and_their_records_are_gone() -> None:
    async with running_sim(config()) as sim:
        state = sim.simulator.state
        state.add_user("o_keep", "留下")
        state.add_user("o_gone", "王小明", followed=True)
        state.record("o_gone", "user", "text", "我的电话13800138000")
        state.record("o_keep", "user", "text", "你好")
        async with sim.http.delete(sim.url + "/sim/api/users/o_gone") as answer:
            assert answer.status == 200 and await answer.json() == {"erased_records": 1}
        assert "o_gone" not in state.users and "o_keep" in state.users
        assert [record.openid for record in state.log()] == ["o_keep"]
        async with sim.http.delete(sim.url + "/sim/api/users/%20bad") as answer:
            assert answer.status == 400
