"""Errors a user causes through the alarms, users, models, uplinks and statistics routes: ``api.*``
(a bad query parameter, an id that does not exist, a contradictory request)."""

TEXT: dict[str, dict[str, str]] = {
    # shared query parameters
    "api.time_format": {
        "zh": "查询参数 {name} 须为 ISO 8601 时间，例如 2026-11-21T08:00:00+08:00",
        "en": "query parameter {name} must be an ISO 8601 time, e.g. 2026-11-21T08:00:00+08:00",
    },
    "api.time_range": {
        "zh": "查询参数 {name} 须为 1970 年至 2200 年之间的时间",
        "en": "query parameter {name} must be a time between the years 1970 and 2200",
    },
    "api.since_before_until": {
        "zh": "开始时间（since）须早于结束时间（until）",
        "en": "since must be before until",
    },
    # alarms
    "api.idempotency_key": {
        "zh": "Idempotency-Key 须为 1 至 {max} 个字符",
        "en": "Idempotency-Key must be 1..{max} characters",
    },
    "api.in_future": {
        "zh": "{what} 晚于当前时间；请发送事件实际发生的时间",
        "en": "{what} is in the future; send the time it happened",
    },
    "api.q_too_long": {
        "zh": "搜索词（q）最多 100 个字符，请缩短",
        "en": "query parameter q may have at most 100 characters",
    },
    "api.verdict": {
        "zh": "verdict 须为 true_positive（真实报警）、false_positive（误报）或 none",
        "en": "verdict must be true_positive, false_positive or none",
    },
    "api.alarm_source": {
        "zh": "source 须为 live（实时）或 video（离线视频）",
        "en": "source must be live or video",
    },
    "api.video_job": {
        "zh": "job 须为离线视频任务编号（26 个字符）",
        "en": "job must be a video job id (26 characters)",
    },
    "api.no_alarm": {"zh": "报警 {alarm} 不存在", "en": "no alarm {alarm}"},
    "api.evidence_kind": {
        "zh": "kind 须为 snapshot、snapshot_raw 或 clear_snapshot",
        "en": "kind must be snapshot, snapshot_raw or clear_snapshot",
    },
    "api.alarm_lacks": {"zh": "报警 {alarm} 没有 {kind}", "en": "alarm {alarm} has no {kind}"},
    "api.alarm_file_missing": {
        "zh": "报警 {alarm} 的 {kind} 文件已不在存储中",
        "en": "the {kind} file of alarm {alarm} is missing from storage",
    },
    "api.no_evidence": {
        "zh": "报警 {alarm} 没有证据 {digest}",
        "en": "alarm {alarm} has no evidence {digest}",
    },
    "api.evidence_gone": {
        "zh": "该证据文件已不在存储中（已超过保留期限）",
        "en": "the evidence file is no longer in storage (past its retention)",
    },
    "api.export_format": {"zh": "format 须为 csv 或 xlsx", "en": "format must be csv or xlsx"},
    "api.export_lang": {"zh": "lang 须为 zh 或 en", "en": "lang must be zh or en"},
    "api.reject_reason": {
        "zh": "请填写这些报警为误报的原因（reason）",
        "en": "give the reason these alarms are false positives (reason)",
    },
    # users and tokens
    "api.user_id": {
        "zh": "用户编号须为整数（见 GET /api/users）",
        "en": "user id must be an integer (see GET /api/users)",
    },
    "api.enabled_contradiction": {
        "zh": "disabled 与 enabled 相互矛盾；请只发送其中一个",
        "en": "disabled and enabled contradict each other; send one of them",
    },
    "api.hash_busy": {
        "zh": "网关正在处理其他登录，请几秒后重试",
        "en": "the gateway is busy checking logins; try again in a few seconds",
    },
    "api.login_busy": {
        "zh": "网关正在处理其他登录，请几秒后重试",
        "en": "the gateway is busy checking other logins; try again in a few seconds",
    },
    "api.no_user": {"zh": "用户 {user} 不存在", "en": "no user {user}"},
    "api.last_admin": {
        "zh": "{user} 是最后一个启用的管理员；请先把另一个用户设为管理员",
        "en": "{user} is the last enabled admin; make another user admin first",
    },
    "api.wrong_login": {"zh": "用户名或密码错误", "en": "wrong username or password"},
    "api.token_id": {"zh": "令牌编号须为整数", "en": "token id must be an integer"},
    "api.no_token": {"zh": "令牌 {token} 不存在", "en": "no token {token}"},
    # uplinks
    "api.feed_since": {
        "zh": "since 须为之前某条消息的序号",
        "en": "since must be a sequence number from an earlier message",
    },
    # statistics
    "api.period_too_long": {
        "zh": "时间段最长 {days} 天；请缩小 since/until 的范围",
        "en": "the period may span at most {days} days; narrow since/until",
    },
    "api.stats_source": {
        "zh": "source 须为 live（实时）、video（离线视频）或 all（全部）",
        "en": "source must be live, video or all",
    },
    "api.stats_format": {"zh": "format 须为 json 或 csv", "en": "format must be json or csv"},
    "api.stats_group": {
        "zh": "group 须为以下之一：{groups}",
        "en": "group must be one of {groups}",
    },
    # model versions (gateway.models.versions errors' keys)
    "api.model.no_version": {
        "zh": "模型版本 {version} 不存在；`vigil models list` 或模型页面列出所有版本",
        "en": "no model version '{version}'; `vigil models list` shows the versions",
    },
    "api.model.no_target": {
        "zh": "“{target}”既不是模型版本编号也不是模型名称",
        "en": "'{target}' is neither a model version id nor a model name",
    },
    "api.model.gate_no_f1_override": {
        "zh": "上线门槛：版本 {candidate} 没有测试集上的 F1，而 {replaced} 为 {old}；"
        "如仍要启用，请选择强制启用并填写原因",
        "en": "promotion gate: version {candidate} has no F1 on a test set while {replaced} has {old}; "
        "activate with override and a reason to do it anyway",
    },
    "api.model.gate_no_f1_reason": {
        "zh": "上线门槛：版本 {candidate} 没有测试集上的 F1，而 {replaced} 为 {old}；强制启用须填写原因",
        "en": "promotion gate: version {candidate} has no F1 on a test set while {replaced} has {old}; "
        "an override needs a reason",
    },
    "api.model.gate_lower_override": {
        "zh": "上线门槛：版本 {candidate} 的 F1 为 {new}，低于 {replaced} 的 {old}；"
        "如仍要启用，请选择强制启用并填写原因",
        "en": "promotion gate: version {candidate} has F1 {new}, lower than {old} of {replaced}; "
        "activate with override and a reason to do it anyway",
    },
    "api.model.gate_lower_reason": {
        "zh": "上线门槛：版本 {candidate} 的 F1 为 {new}，低于 {replaced} 的 {old}；强制启用须填写原因",
        "en": "promotion gate: version {candidate} has F1 {new}, lower than {old} of {replaced}; "
        "an override needs a reason",
    },
    "api.model.camera_needs_scene": {
        "zh": "指定摄像机时须同时指定场景：模型按场景启用",
        "en": "a camera needs a scene: activation is per scene",
    },
    "api.model.no_camera_runs": {
        "zh": "没有摄像机运行场景“{scene}”",
        "en": "no camera runs scene '{scene}'",
    },
    "api.model.no_camera_on_camera": {
        "zh": "摄像机 {camera} 没有运行场景“{scene}”",
        "en": "no camera runs scene '{scene}' on camera {camera}",
    },
    "api.model.no_earlier": {
        "zh": "模型“{model}”没有可回退的更早版本",
        "en": "model '{model}' has no earlier version to roll back to",
    },
    "api.model.current_already": {
        "zh": "版本 {version} 已是当前版本",
        "en": "version {version} is the current version already",
    },
    # alarm lifecycle refusals (gateway.alarms.lifecycle errors' keys)
    "alarm.closed": {
        "zh": "报警 {alarm} 已关闭，不能再更改",
        "en": "alarm {alarm} is closed; nothing can change it any more",
    },
    "alarm.rejected_no_confirm": {
        "zh": "报警 {alarm} 已判定为误报，不能再确认",
        "en": "alarm {alarm} was rejected as a false positive; it cannot be confirmed",
    },
    "alarm.reject_needs_reason": {
        "zh": "判定误报须填写原因（为何是误报）",
        "en": "a rejection needs a reason (why it is a false positive)",
    },
    "alarm.confirm_first": {
        "zh": "请先确认报警 {alarm}，再登记处置",
        "en": "confirm alarm {alarm} before recording its disposal",
    },
    "alarm.rejected_no_disposal": {
        "zh": "报警 {alarm} 已判定为误报，误报无需处置",
        "en": "alarm {alarm} was rejected; a false positive is not disposed",
    },
    "alarm.disposal_fields": {
        "zh": "登记处置须填写处置人和处置结果",
        "en": "a disposal needs a handler and a result",
    },
    # uplink targets (gateway.delivery.uplinks errors' keys)
    "api.no_feed": {
        "zh": "未配置 websocket（大屏）上报目标；请在配置的 `uplink` 中添加",
        "en": "no websocket (big-screen) uplink target is configured",
    },
    "api.no_feed_target": {
        "zh": "websocket 上报目标“{target}”不存在",
        "en": "no websocket uplink target '{target}'",
    },
    "api.no_target": {"zh": "上报目标“{target}”不存在", "en": "no uplink target '{target}'"},
    # logins and passwords
    "api.login_locked_account": {
        "zh": "此账号登录失败次数过多；请 {wait} 秒后再试",
        "en": "too many failed logins for this account; try again in {wait} s",
    },
    "api.login_locked_address": {
        "zh": "此地址登录失败次数过多；请 {wait} 秒后再试",
        "en": "too many failed logins for this address; try again in {wait} s",
    },
}
