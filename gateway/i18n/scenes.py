"""Scenes: alarm messages (``alarm.<scene>``), the names the gateway gives (``region.frame``), values
inside messages (``value.*``) and parameter labels and descriptions (``param.<name>``,
``param.<name>.help``).

An alarm message's parameters are the alarm's region, its details (peak, people, duration_s, colour,
posture...) and the scene's parameters at the time (``scene_params`` in the details).
"""

TEXT: dict[str, dict[str, str]] = {
    "region.frame": {"zh": "全画面", "en": "whole frame"},
    "region.need3": {
        "zh": "区域至少需要 3 个顶点（现有 {n} 个）",
        "en": "a polygon needs at least 3 points, got {n}",
    },
    "region.outside": {
        "zh": "第 {i} 个顶点超出画面：坐标应为 0 到 1 之间的比例",
        "en": "point {i} is outside the picture: use fractions of width and height (0..1)",
    },
    "region.crosses": {
        "zh": "区域自相交（第 {i} 条边与第 {j} 条边相交）：请沿边界按顺序点选顶点",
        "en": "the polygon crosses itself (edges {i} and {j}); list its points in order along the border",
    },
    "region.no_area": {"zh": "区域面积为零：请选取不在一条直线上的点", "en": "the polygon has no area"},
    # --- alarm messages ---------------------------------------------------------------------------
    # A camera-scene's flood alarm (gateway/alarms/repeats.py): details.flood = {alarms, minutes}.
    "alarm.flood": {
        "zh": "报警泛滥：{flood[minutes]:g} 分钟内已有 {flood[alarms]} 条报警，"
        "之后的报警并入本条（区域“{region}”）",
        "en": "Alarm flood: {flood[alarms]} alarms in {flood[minutes]:g} min; later ones are merged into "
        "this alarm (region '{region}')",
    },
    "alarm.intrusion": {
        "zh": "{peak} 人闯入区域“{region}”",
        "en": "{peak} person(s) entered region '{region}'",
    },
    "alarm.crowd": {
        "zh": "区域“{region}”人员聚集，最多 {peak} 人（阈值 {min_people} 人）",
        "en": "crowd of up to {peak} people in region '{region}' (threshold {min_people})",
    },
    "alarm.off_post": {
        "zh": "区域“{region}”在岗人数少于 {min_people} 人，持续 {duration_s:.0f} 秒",
        "en": "fewer than {min_people} person(s) on duty in '{region}' for {duration_s:.0f} s",
    },
    "alarm.lifting_zone": {
        "zh": "吊装区域“{region}”内有 {peak} 人（额定 {rated_people} 人）",
        "en": "{peak} people in lifting zone '{region}', rated for {rated_people}",
    },
    "alarm.lifting_zone.forbidden": {
        "zh": "{peak} 人进入禁止进入的吊装区域“{region}”",
        "en": "{peak} person(s) in the forbidden lifting zone '{region}'",
    },
    "alarm.helmet": {
        "zh": "区域“{region}”有人未戴安全帽（头部颜色：{colour}）",
        "en": "person without a safety helmet in '{region}' (colour at the head: {colour})",
    },
    "alarm.helmet.colour": {
        "zh": "区域“{region}”安全帽颜色 {colour} 不符合要求",
        "en": "helmet colour {colour} not allowed in '{region}'",
    },
    "alarm.workwear": {
        "zh": "区域“{region}”有人未穿工作服",
        "en": "person without work clothes in '{region}'",
    },
    "alarm.flame": {"zh": "区域“{region}”发现明火", "en": "flame in '{region}'"},
    "alarm.smoke": {"zh": "区域“{region}”发现烟雾", "en": "smoke in '{region}'"},
    "alarm.extinguisher": {
        "zh": "动火区域“{region}”灭火器不足：{people} / {required} 具",
        "en": "hot work in '{region}' with {people} of {required} required fire extinguishers",
    },
    "alarm.rigger_on_post": {
        "zh": "区域“{region}”无司索/指挥人员，持续 {duration_s:.0f} 秒",
        "en": "no rigger/signaller in '{region}' for {duration_s:.0f} s",
    },
    "alarm.supervisor_present": {
        "zh": "区域“{region}”无现场监护人，持续 {duration_s:.0f} 秒",
        "en": "no site supervisor in '{region}' for {duration_s:.0f} s",
    },
    "alarm.sleeping": {
        "zh": "区域“{region}”有人睡岗（{posture}）",
        "en": "person sleeping on duty in '{region}' ({posture})",
    },
    "alarm.phone": {
        "zh": "区域“{region}”有人打电话",
        "en": "person on the phone in '{region}'",
    },
    "alarm.smoking": {"zh": "区域“{region}”有人吸烟", "en": "smoking in '{region}'"},
    # --- values inside messages ---------------------------------------------------------------------
    "value.colour.red": {"zh": "红色", "en": "red"},
    "value.colour.yellow": {"zh": "黄色", "en": "yellow"},
    "value.colour.blue": {"zh": "蓝色", "en": "blue"},
    "value.colour.white": {"zh": "白色", "en": "white"},
    "value.colour.other": {"zh": "其他", "en": "other"},
    "value.colour.unknown": {"zh": "未知", "en": "unknown"},
    "value.posture.lying": {"zh": "躺卧", "en": "lying"},
    "value.posture.still": {"zh": "长时间静止", "en": "still"},
    "value.posture.slumped": {"zh": "趴伏", "en": "slumped"},
    # --- scene parameters (the camera page's scene form) --------------------------------------------
    "param.min_people": {"zh": "最少人数", "en": "Min people"},
    "param.min_people.help": {
        "zh": "区域内达到该人数即报警（离岗：少于该人数即报警）",
        "en": "people in the region that raise the alarm (off post: fewer than this)",
    },
    "param.rated_people": {"zh": "额定人数", "en": "Rated people"},
    "param.rated_people.help": {
        "zh": "吊装时区域内允许的人数；0 表示禁止进入",
        "en": "people allowed in the zone during a lift; 0 makes it a forbidden zone",
    },
    "param.required": {"zh": "所需灭火器数量", "en": "Required extinguishers"},
    "param.required.help": {
        "zh": "动火作业点应配备的灭火器数量",
        "en": "extinguishers required at the hot-work site",
    },
    "param.allowed_colours": {"zh": "允许的安全帽颜色", "en": "Allowed helmet colours"},
    "param.allowed_colours.help": {
        "zh": "此处允许的安全帽颜色（红、黄、蓝、白、其他）；留空表示任何颜色",
        "en": "helmet colours allowed here (red, yellow, blue, white, other); empty = any colour",
    },
    "param.violation_labels": {"zh": "违规类别", "en": "Violation classes"},
    "param.violation_labels.help": {
        "zh": "表示违规（如未戴安全帽）的模型类别",
        "en": "model classes that mean a violation",
    },
    "param.helmet_labels": {"zh": "安全帽类别", "en": "Helmet classes"},
    "param.helmet_labels.help": {
        "zh": "表示已戴安全帽的模型类别",
        "en": "classes that mean a helmet is worn",
    },
    "param.uniform_labels": {"zh": "工作服类别", "en": "Uniform classes"},
    "param.uniform_labels.help": {
        "zh": "以模型判断时，可接受的工作服类别",
        "en": "classes of the accepted uniform types",
    },
    "param.labels": {"zh": "检测类别", "en": "Classes"},
    "param.labels.help": {"zh": "本场景读取的模型类别", "en": "model classes this scene reads"},
    "param.role": {"zh": "岗位角色", "en": "Role"},
    "param.role.help": {"zh": "需要在场的人员角色", "en": "the role of the people who must be there"},
    "param.min_present": {"zh": "最少在场人数", "en": "Min present"},
    "param.min_present.help": {
        "zh": "该角色至少应在区域内的人数",
        "en": "people with the role who must be in the area",
    },
    "param.stillness": {"zh": "静止阈值", "en": "Stillness"},
    "param.stillness.help": {
        "zh": "在时间窗内的最大移动量（以人体高度计），小于该值视为静止",
        "en": "largest movement, in person heights, over the window that counts as still",
    },
    "param.window_s": {"zh": "判定时间窗（秒）", "en": "Window (s)"},
    "param.window_s.help": {"zh": "向前多长时间判断是否静止", "en": "how far back stillness is judged"},
    "param.lying_ratio": {"zh": "躺卧宽高比", "en": "Lying ratio"},
    "param.lying_ratio.help": {
        "zh": "人体框宽/高大于该值视为躺卧",
        "en": "box width / height above this means lying",
    },
    "param.phone_labels": {"zh": "手机类别", "en": "Phone classes"},
    "param.phone_labels.help": {"zh": "检测模型中的手机类别", "en": "phone classes of the detectors"},
    "param.pose_score": {"zh": "姿态得分", "en": "Pose score"},
    "param.pose_score.help": {
        "zh": "仅凭姿态（手腕靠近耳朵）时的得分",
        "en": "score of the pose-only cue (wrist at the ear)",
    },
    "param.reach": {"zh": "手耳距离", "en": "Reach"},
    "param.reach.help": {
        "zh": "手腕到耳朵的距离（以肩宽计），小于该值视为贴耳",
        "en": "wrist-to-ear distance, in shoulder widths, that counts",
    },
    "param.mouth_bonus": {"zh": "口部加分", "en": "Mouth bonus"},
    "param.mouth_bonus.help": {
        "zh": "香烟位于嘴部时增加的得分",
        "en": "score added when the cigarette is at a mouth",
    },
    "param.window_sides": {"zh": "扫描窗口高度", "en": "Window heights"},
    "param.window_sides.help": {
        "zh": "登记识别：扫描窗口的高度（占画面高度的比例）",
        "en": "enrolment: heights of the scanning windows, as fractions of the frame height",
    },
    "param.candidates": {"zh": "候选窗口数", "en": "Candidates"},
    "param.candidates.help": {
        "zh": "登记识别：每帧比对的窗口数（颜色最接近的）",
        "en": "enrolment: windows embedded per frame (those closest in colour)",
    },
    "param.enrolled_markers": {"zh": "使用登记标识", "en": "Enrolled markers"},
    "param.enrolled_markers.help": {
        "zh": "与本场景登记的标识（如袖标、马甲）相符的人员也视为该角色",
        "en": "a person matching a marker enrolled for this scene also has the role",
    },
    "param.classes": {"zh": "类别与报警名称", "en": "Classes and alarm names"},
    "param.classes.help": {
        "zh": "检测类别 → 报警名称，例如 forklift: 叉车进入人行道",
        "en": "detector class -> alarm name, e.g. forklift: forklift in walkway",
    },
}
