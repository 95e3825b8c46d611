"""Text folding shared by the rules: one canonical form before any lexicon lookup.

The rules match customer text against small Simplified-Chinese lexicons, so the text is folded
first: NFKC turns full-width digits, letters and punctuation (１３８, ＴＤ, ！，) into ASCII, then
the Traditional characters our lexicons need become Simplified and everything is lower-cased.
The table is deliberately small and one-to-one (string offsets are kept); the NLU pipeline does
the full conversion, but actions must not depend on what reached them.
"""

from __future__ import annotations

import unicodedata

# "Traditional Simplified" pairs, only for characters that occur in the rules' lexicons.
_PAIRS = (
    "優优 關关 懷怀 問问 訂订 閱阅 調调 滿满 評评 價价 廣广 動动 銷销 訪访 進进 節节 "
    "壞坏 質质 損损 錢钱 騙骗 氣气 協协 訴诉 萬万 兩两 億亿 積积 兌兑 換换 別别 發发 "
    "給给 訊讯 條条 還还 個个 這这 麼么 無无 貨货 幫帮 爛烂 騷骚 擾扰 體体 記记 報报 "
    "機机 電电 響响 聲声 異异 歡欢 買买 錯错 適适 種种 類类 後后 餘余 僅仅 繼继 續续 "
    "願愿 聯联 繫系 係系 絡络 點点 號号 碼码 驗验 證证 單单 產产 東东 賣卖 們们 會会 "
    "說说 話话 讓让 應应 處处 辦办 從从 禮礼 贈赠 紅红 陸陆 貳贰 傳传 詐诈 燒烧 熱热 "
    "斷断 嗎吗 噁恶 惡恶 費费 態态 專专 屬属 郵邮 簡简 薦荐 題题 賠赔 償偿 詢询 線线 "
    "貼贴 護护 養养 嚴严 與与 為为 貴贵 過过 夠够 經经 網网 劃划 銹锈 鏽锈 變变 燈灯 "
    "統统 複复 覆复 門门 維维 繫系 顧顾 剩剩 須须 漲涨 壓压 閉闭 緊紧 靈灵 區区 慶庆 "
    "湊凑 馬马 勁劲 極极 級级 讚赞 贊赞 參参 絕绝 顆颗 樣样 蠻蛮 較较 當当 規规 沒没 "
    "時时 間间 樂乐 對对 謝谢 務务"
)
_TRADITIONAL = {ord(pair[0]): pair[1] for pair in _PAIRS.split()}


def fold(text: str) -> str:
    """Full-width to ASCII (NFKC), the lexicons' Traditional characters Simplified, lower case."""
    return unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower()


def contains_any(text: str, words: tuple[str, ...]) -> bool:
    """Whether any of `words` occurs in `text` (both already folded)."""
    return any(word in text for word in words)
