package api

// Calendar is a calendar of a grant (GET /v3/grants/{g}/calendars).
type Calendar struct {
	Object             string            `json:"object"` // "calendar"
	ID                 string            `json:"id"`
	GrantID            string            `json:"grant_id"`
	Name               string            `json:"name"`
	Description        string            `json:"description,omitempty"`
	Location           string            `json:"location,omitempty"`
	Timezone           string            `json:"timezone"`
	HexColor           string            `json:"hex_color,omitempty"`
	HexForegroundColor string            `json:"hex_foreground_color,omitempty"`
	IsPrimary          bool              `json:"is_primary"`
	IsOwnedByUser      bool              `json:"is_owned_by_user"`
	ReadOnly           bool              `json:"read_only"`
	OwnerEmail         string            `json:"owner_email,omitempty"`
	Metadata           map[string]string `json:"metadata"`
}

// CalendarInput is the body of calendar create and update; nil fields
// were absent.
type CalendarInput struct {
	Name               *string           `json:"name"`
	Description        *string           `json:"description"`
	Location           *string           `json:"location"`
	Timezone           *string           `json:"timezone"`
	HexColor           *string           `json:"hex_color"`
	HexForegroundColor *string           `json:"hex_foreground_color"`
	Metadata           map[string]string `json:"metadata"`
}

// When is an event's time in one of four forms, told apart by Object:
// "time" (Time, Timezone), "timespan" (StartTime, EndTime, StartTimezone,
// EndTimezone), "date" (Date) and "datespan" (StartDate, EndDate, the end
// inclusive). Requests may omit Object; the form follows from the fields.
type When struct {
	Object        string `json:"object,omitempty"`
	Time          int64  `json:"time,omitempty"`
	Timezone      string `json:"timezone,omitempty"`
	StartTime     int64  `json:"start_time,omitempty"`
	EndTime       int64  `json:"end_time,omitempty"`
	StartTimezone string `json:"start_timezone,omitempty"`
	EndTimezone   string `json:"end_timezone,omitempty"`
	Date          string `json:"date,omitempty"`
	StartDate     string `json:"start_date,omitempty"`
	EndDate       string `json:"end_date,omitempty"`
}

// EventParticipant is an attendee; Status is yes, no, maybe or noreply.
type EventParticipant struct {
	Email       string `json:"email"`
	Name        string `json:"name,omitempty"`
	Status      string `json:"status,omitempty"`
	Comment     string `json:"comment,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// EventPerson is an organizer or creator.
type EventPerson struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Reminders are an event's alarms.
type Reminders struct {
	UseDefault bool               `json:"use_default"`
	Overrides  []ReminderOverride `json:"overrides"`
}

// ReminderOverride is one alarm: minutes before the start, and how.
type ReminderOverride struct {
	ReminderMinutes int    `json:"reminder_minutes"`
	ReminderMethod  string `json:"reminder_method,omitempty"` // email, popup, sound, display
}

// Conferencing is the online meeting of an event.
type Conferencing struct {
	Provider string              `json:"provider"`
	Details  *ConferencingDetail `json:"details,omitempty"`
}

// ConferencingDetail holds the meeting's URL and codes.
type ConferencingDetail struct {
	URL         string   `json:"url,omitempty"`
	MeetingCode string   `json:"meeting_code,omitempty"`
	Password    string   `json:"password,omitempty"`
	PIN         string   `json:"pin,omitempty"`
	Phone       []string `json:"phone,omitempty"`
}

// Event is a calendar event, or one instance of a recurring series
// (MasterEventID and OriginalStartTime set).
type Event struct {
	Object            string             `json:"object"` // "event"
	ID                string             `json:"id"`
	GrantID           string             `json:"grant_id"`
	CalendarID        string             `json:"calendar_id"`
	Title             string             `json:"title"`
	Description       string             `json:"description"`
	Location          string             `json:"location"`
	When              When               `json:"when"`
	Participants      []EventParticipant `json:"participants"`
	Organizer         *EventPerson       `json:"organizer,omitempty"`
	Creator           *EventPerson       `json:"creator,omitempty"`
	Busy              bool               `json:"busy"`
	Status            string             `json:"status"` // confirmed, maybe, cancelled
	Visibility        string             `json:"visibility,omitempty"`
	ReadOnly          bool               `json:"read_only"`
	Recurrence        []string           `json:"recurrence,omitempty"`
	MasterEventID     string             `json:"master_event_id,omitempty"`
	OriginalStartTime int64              `json:"original_start_time,omitempty"`
	ICalUID           string             `json:"ical_uid"`
	Conferencing      *Conferencing      `json:"conferencing,omitempty"`
	Reminders         *Reminders         `json:"reminders,omitempty"`
	Metadata          map[string]string  `json:"metadata"`
	HTMLLink          string             `json:"html_link,omitempty"`
	CreatedAt         int64              `json:"created_at"`
	UpdatedAt         int64              `json:"updated_at"`
}

// EventInput is the body of event create and update; nil fields were
// absent (an update keeps them).
type EventInput struct {
	Title        *string             `json:"title"`
	Description  *string             `json:"description"`
	Location     *string             `json:"location"`
	When         *When               `json:"when"`
	Participants *[]EventParticipant `json:"participants"`
	Busy         *bool               `json:"busy"`
	Recurrence   *[]string           `json:"recurrence"`
	Reminders    *Reminders          `json:"reminders"`
	Conferencing *Conferencing       `json:"conferencing"`
	Metadata     map[string]string   `json:"metadata"`
	Visibility   *string             `json:"visibility"`
	Status       *string             `json:"status"`
}

// FreeBusyRequest is the body of POST /v3/grants/{g}/calendars/free-busy.
type FreeBusyRequest struct {
	StartTime       int64    `json:"start_time"`
	EndTime         int64    `json:"end_time"`
	Emails          []string `json:"emails"`
	TentativeAsBusy *bool    `json:"tentative_as_busy"`
}

// FreeBusy is one entry of the free/busy answer: Object "free_busy" with
// TimeSlots, or "error" with Error.
type FreeBusy struct {
	Object    string      `json:"object"`
	Email     string      `json:"email"`
	TimeSlots *[]TimeSlot `json:"time_slots,omitempty"` // present (maybe empty) on free_busy entries
	Error     string      `json:"error,omitempty"`
}

// TimeSlot is one busy period.
type TimeSlot struct {
	Object    string `json:"object"` // "time_slot"
	StartTime int64  `json:"start_time"`
	EndTime   int64  `json:"end_time"`
	Status    string `json:"status"` // "busy"
}
