"""The fixed facts of the simulated organization: channels, courses, knowledge points, names, places.

Everything here is plain data; the planted differences (lead quality and cost per channel,
knowledge-point difficulty, course prices) are what the ground truth reports back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    """An acquisition channel. `intent` is the Beta(a, b) its leads' latent purchase intent is drawn from."""

    name: str
    campaigns: tuple[str, ...]
    share: float  # of all leads
    cost_per_lead: float  # yuan; 0 for channels without ad spend
    intent: tuple[float, float]
    utm_medium: str
    source_system: str
    click_through: float  # clicks / impressions
    platform: str  # where its visitors land

    @property
    def paid(self) -> bool:
        return self.cost_per_lead > 0


REFERRAL = "referral"
ORGANIC = "organic"

CHANNELS: tuple[Channel, ...] = (
    Channel("douyin", ("short_video_trial", "live_room_9yuan"), 0.24, 65.0, (1.4, 6.0), "cpc", "landing_page",
            0.021, "h5"),
    Channel("baidu_sem", ("brand_keywords", "k12_generic_keywords"), 0.15, 185.0, (3.0, 3.6), "cpc", "landing_page",
            0.034, "web"),
    Channel("wechat_ads", ("moments_free_trial", "official_account_article"), 0.15, 120.0, (2.2, 4.4), "cpc",
            "mini_program", 0.012, "mini_program"),
    Channel("xiaohongshu", ("parent_notes_boost",), 0.10, 95.0, (2.6, 3.8), "social", "landing_page", 0.018, "h5"),
    Channel("kuaishou", ("feed_9yuan_trial",), 0.09, 48.0, (1.1, 7.0), "cpc", "landing_page", 0.015, "h5"),
    Channel("offline_event", ("school_seminar",), 0.05, 150.0, (4.0, 3.5), "offline", "crm", 0.08, "h5"),
    Channel(ORGANIC, ("seo",), 0.10, 0.0, (3.0, 4.0), "organic", "landing_page", 0.0, "web"),
    Channel(REFERRAL, ("student_referral",), 0.12, 0.0, (5.0, 3.0), "share", "referral", 0.0, "mini_program"),
)
CHANNEL_INDEX = {c.name: i for i, c in enumerate(CHANNELS)}


@dataclass(frozen=True)
class KnowledgePoint:
    name: str
    difficulty: float  # 0 easy .. 1 hard; accuracy falls with it


@dataclass(frozen=True)
class Course:
    course_id: str
    name: str
    subject: str
    price: int
    lessons: int
    minutes: int
    knowledge_points: tuple[KnowledgePoint, ...]
    next_course: str | None  # what a renewal buys
    grades: tuple[int, ...]  # school grades it is sold to


def _kps(*pairs: tuple[str, float]) -> tuple[KnowledgePoint, ...]:
    return tuple(KnowledgePoint(n, d) for n, d in pairs)


_ENGLISH = _kps(("phonics", 0.15), ("vocabulary", 0.3), ("grammar_tense", 0.6), ("reading_main_idea", 0.45),
                ("listening_detail", 0.7))
_MATH = _kps(("mental_arithmetic", 0.15), ("fractions", 0.5), ("geometry_area", 0.45), ("word_problems", 0.75),
             ("number_patterns", 0.6))
_PHYSICS = _kps(("force_motion", 0.55), ("pressure", 0.65), ("optics", 0.45), ("circuits", 0.8))
_CODING = _kps(("variables", 0.2), ("loops", 0.45), ("functions", 0.65), ("recursion", 0.9))
_WRITING = _kps(("narrative", 0.35), ("description", 0.3), ("argument", 0.7))

COURSES: tuple[Course, ...] = (
    Course("eng-l1", "English Foundations L1", "english", 2980, 16, 45, _ENGLISH, "eng-l2", (1, 2, 3, 4)),
    Course("eng-l2", "English Foundations L2", "english", 3480, 16, 45, _ENGLISH, "eng-l3", (3, 4, 5, 6)),
    Course("eng-l3", "English Reading L3", "english", 3980, 16, 50, _ENGLISH, None, (5, 6, 7, 8, 9)),
    Course("math-g4", "Math Thinking G4", "math", 3280, 14, 50, _MATH, "math-g5", (2, 3, 4, 5)),
    Course("math-g5", "Math Thinking G5", "math", 3580, 14, 50, _MATH, None, (4, 5, 6, 7)),
    Course("phy-j2", "Junior Physics I", "physics", 3680, 12, 60, _PHYSICS, "phy-j3", (7, 8, 9)),
    Course("phy-j3", "Junior Physics II", "physics", 3880, 12, 60, _PHYSICS, None, (8, 9)),
    Course("code-py1", "Python for Kids L1", "coding", 3980, 12, 60, _CODING, "code-py2", (3, 4, 5, 6, 7, 8, 9)),
    Course("code-py2", "Python for Kids L2", "coding", 4380, 12, 60, _CODING, None, (5, 6, 7, 8, 9)),
    Course("write-cn", "Chinese Writing I", "writing", 2680, 12, 45, _WRITING, "write-cn2", (2, 3, 4, 5, 6, 7, 8, 9)),
    Course("write-cn2", "Chinese Writing II", "writing", 2880, 12, 45, _WRITING, None, (3, 4, 5, 6, 7, 8, 9)),
)
COURSE_INDEX = {c.course_id: i for i, c in enumerate(COURSES)}
# Courses a first order can buy (entry levels); renewals buy `next_course`.
ENTRY_COURSES = tuple(i for i, c in enumerate(COURSES) if c.course_id in (
    "eng-l1", "eng-l2", "math-g4", "phy-j2", "code-py1", "write-cn"))

# Weekly timetables of classes: (weekdays, local start hour). Monday is 0.
TIMETABLES: tuple[tuple[tuple[int, ...], float], ...] = (
    ((0, 2), 19.0),
    ((1, 3), 19.5),
    ((5, 6), 10.0),
    ((2, 4), 18.5),
    ((5, 6), 15.0),
)
CLASS_CAPACITY = 30

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = "子涵欣怡梓轩浩然雨桐一诺宇航思远佳琪俊杰诗雨明轩语嫣博文可馨晨曦天佑若汐"
CITIES: tuple[tuple[str, float], ...] = (
    ("北京", 9), ("上海", 9), ("广州", 7), ("深圳", 8), ("杭州", 6), ("成都", 6), ("武汉", 5), ("南京", 5),
    ("西安", 4), ("重庆", 4), ("苏州", 4), ("长沙", 3), ("郑州", 3), ("天津", 3), ("青岛", 2), ("厦门", 2),
)
# Hour-of-day weights of people's activity (leads, browsing): lunch and evening peaks.
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4, 5, 6, 5, 4, 4, 4, 5, 6, 8, 10, 10, 8, 4)

LANDING_PATHS = ("/landing/{campaign}", "/courses/{course}", "/pricing", "/teachers", "/free-trial")
APP_PATHS = ("/app/courses/{course}", "/app/pricing", "/app/trial", "/app/home", "/app/teachers")
PARENT_PATHS = ("/parent/report", "/parent/homework", "/parent/notices", "/parent/attendance")
TEACHER_PATHS = ("/teacher/classes", "/teacher/homework", "/teacher/grades", "/teacher/notices")

INSTITUTION_BRANDS = ("学而思维", "启明星", "新航道", "博睿", "优学", "智慧树", "小蜜蜂", "育英", "明德", "卓越")
SCHOOL_KINDS = ("实验小学", "第一中学", "外国语学校", "实验中学", "第二小学", "育才学校")
DISTRICTS = ("东城区", "西城区", "海淀区", "朝阳区", "南山区", "天河区", "武侯区", "西湖区")
